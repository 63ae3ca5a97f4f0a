"""Tests for autorec_jax.data.matfile: MATLAB v5 and v7.3 (HDF5) variables."""

from __future__ import annotations

import io

import h5py
import numpy as np
import pytest
import scipy.io
import scipy.sparse as sp

from autorec_jax.data import jester, matfile
from autorec_jax.data.errors import DataFormatError
from tests.data.jester_test import check, jester_matrix
from tests.data.matlab_files import write_v73


def test_hdf5_signature_at_0_or_after_a_user_block():
  sig = matfile.HDF5_SIGNATURE
  assert matfile.is_hdf5(sig + bytes(8))
  assert matfile.is_hdf5(bytes(512) + sig)
  assert matfile.is_hdf5(bytes(2048) + sig)
  assert not matfile.is_hdf5(bytes(100) + sig)  # not at a power-of-two offset
  assert not matfile.is_hdf5(b"MATLAB 5.0 MAT-file" + bytes(200))


def test_v73_dense_and_sparse_read_as_matlab_shows_them(tmp_path):
  x = np.arange(12.0).reshape(3, 4)  # not square: a missing transpose would show
  path = tmp_path / "v.mat"
  write_v73(path, {"A": x, "S": x, "#refs#": np.zeros((1, 1))}, sparse=("S",))
  data = path.read_bytes()
  assert matfile.variable_names(data, str(path)) == ["A", "S"]
  got = matfile.read_variables(data, str(path), ["A", "S"])
  np.testing.assert_array_equal(got["A"], x)
  assert sp.issparse(got["S"]) and got["S"].shape == (3, 4)
  np.testing.assert_array_equal(got["S"].toarray(), x)
  with h5py.File(path, "r") as f:
    assert f["A"].shape == (4, 3)  # stored column-major, as MATLAB does


def test_v5_matches_v73(tmp_path):
  x = np.arange(6.0).reshape(2, 3)
  buf = io.BytesIO()
  scipy.io.savemat(buf, {"A": x})
  np.testing.assert_array_equal(
      matfile.read_variables(buf.getvalue(), "v5.mat", ["A"])["A"], x)


def test_jester_matrix_from_a_v73_file(tmp_path):
  x = jester_matrix()
  path = tmp_path / "jester3.mat"
  write_v73(path, {"X": x})
  check(jester.read_jester_matrix(path), x)


def test_v73_non_numeric_missing_and_complex_variables(tmp_path):
  path = tmp_path / "v.mat"
  write_v73(path, {"A": np.ones((2, 2)), "C": np.ones((2, 2))}, classes={"C": "cell"})
  with h5py.File(path, "r+") as f:
    f["Z"] = np.ones((2, 2)) + 1j
  data, name = path.read_bytes(), str(path)
  with pytest.raises(DataFormatError) as err:
    matfile.read_variables(data, name, ["C"])
  assert str(err.value) == f"{name}: expected a real numeric matrix C, got a MATLAB cell"
  with pytest.raises(DataFormatError) as err:
    matfile.read_variables(data, name, ["B"])
  assert str(err.value) == f"{name}: expected a variable B, got none of that name"
  with pytest.raises(DataFormatError) as err:
    matfile.read_variables(data, name, ["Z"])
  assert str(err.value) == f"{name}: expected a real numeric matrix Z, got complex128"


def test_a_corrupt_v5_file(tmp_path):
  with pytest.raises(DataFormatError) as err:
    matfile.variable_names(b"MATLAB 5.0 MAT-file" + bytes(50), "x.mat")
  assert str(err.value).startswith("x.mat: expected a MATLAB .mat file, got an "
                                   "unreadable file (")
