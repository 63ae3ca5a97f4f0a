"""Tests for autorec_jax.data.jester: the Jester dataset 1 matrix in every container."""

import gzip
import sys
import types
import zipfile

import numpy as np
import pytest
import scipy.io

from autorec_jax.data import jester
from autorec_jax.data.errors import DataError, DataFormatError


def jester_matrix(num_users=4, seed=0):
  """A tiny matrix in the official layout: count, then 100 jokes, 99 = not rated."""
  rng = np.random.default_rng(seed)
  x = np.full((num_users, 101), 99.0)
  for r in range(num_users):
    jokes = rng.choice(100, 5 + r, replace=False)
    x[r, 1 + jokes] = np.round(rng.uniform(-10, 10, len(jokes)), 2)
    x[r, 0] = len(jokes)
  x[0, 1] = 0.0  # a real rating of exactly 0 is kept
  x[0, 0] = np.sum(x[0, 1:] != 99)
  return x


def to_csv(x, sep=","):
  return "".join(sep.join(f"{v:g}" for v in row) + "\n" for row in x)


def expected_triplets(x, user_offset=0):
  rows, cols = np.nonzero(x[:, 1:] != 99)
  return rows + 1 + user_offset, cols + 1, x[:, 1:][rows, cols]


def check(raw, x, user_offset=0):
  user, item, rating = expected_triplets(x, user_offset)
  np.testing.assert_array_equal(raw.user, user)
  np.testing.assert_array_equal(raw.item, item)
  np.testing.assert_allclose(raw.rating, rating)
  assert raw.timestamp is None


def install_fake_xlrd(monkeypatch):
  """Installs a stand-in for xlrd that reads 'workbooks' written as CSV text.

  It has the part of xlrd's API the reader uses (open_workbook, sheet_by_index, nrows,
  row_values), so the .xls path is tested without xlrd or a real .xls file.
  """
  module = types.ModuleType("xlrd")

  class Sheet:
    def __init__(self, rows):
      self.rows, self.nrows = rows, len(rows)

    def row_values(self, r):
      return self.rows[r]

  def cell(v):
    try:
      return float(v)
    except ValueError:
      return v

  def open_workbook(file_contents, logfile=None):
    del logfile
    if not file_contents.startswith(b"XLS\n"):
      raise ValueError("Unsupported format, or corrupt file")
    lines = file_contents.decode()[4:].splitlines()
    rows = [[cell(v) for v in line.split(",")] for line in lines]
    return types.SimpleNamespace(sheet_by_index=lambda i: Sheet(rows))

  module.open_workbook = open_workbook
  monkeypatch.setitem(sys.modules, "xlrd", module)


@pytest.fixture
def fake_xlrd(monkeypatch):
  install_fake_xlrd(monkeypatch)


def xls_bytes(x, text_cell=None):
  lines = [[f"{v:g}" for v in row] for row in x]
  if text_cell:
    r, c, v = text_cell
    lines[r][c] = v
  return b"XLS\n" + "".join(",".join(line) + "\n" for line in lines).encode()


def test_mat_file(tmp_path):
  x = jester_matrix()
  path = tmp_path / "jester3.mat"
  scipy.io.savemat(path, {"X": x})
  raw = jester.read_jester_matrix(path)
  check(raw, x)
  np.testing.assert_array_equal(raw.line, expected_triplets(x)[0])  # rows are 1-based
  assert 0.0 in raw.rating


def test_mat_with_another_single_variable_name(tmp_path):
  x = jester_matrix()
  path = tmp_path / "j.mat"
  scipy.io.savemat(path, {"ratings": x})
  check(jester.read_jester_matrix(path), x)


@pytest.mark.parametrize("sep", [",", "\t", " "])
def test_text_matrix(tmp_path, sep):
  x = jester_matrix()
  path = tmp_path / "jester.txt"
  path.write_text(to_csv(x, sep))
  check(jester.read_jester_matrix(path), x)


def test_gzipped_and_zipped_text_matrix(tmp_path):
  x = jester_matrix()
  gz = tmp_path / "jester.csv.gz"
  gz.write_bytes(gzip.compress(to_csv(x).encode()))
  check(jester.read_jester_matrix(gz), x)
  zp = tmp_path / "jester.zip"
  with zipfile.ZipFile(zp, "w") as zf:
    zf.writestr("jester.csv", to_csv(x))
  check(jester.read_jester_matrix(zp), x)


def test_xls_through_xlrd(tmp_path, fake_xlrd):
  del fake_xlrd
  x = jester_matrix()
  path = tmp_path / "jester-data-1.xls"
  path.write_bytes(xls_bytes(x))
  check(jester.read_jester_matrix(path), x)
  zp = tmp_path / "jester_dataset_1_1.zip"
  with zipfile.ZipFile(zp, "w") as zf:
    zf.writestr("jester-data-1.xls", xls_bytes(x))
  raw = jester.read_jester_matrix(zp, "jester-data-1.xls")
  check(raw, x)
  assert raw.paths == (f"{zp}:jester-data-1.xls",)


def test_xls_text_cell_and_corrupt_file(tmp_path, fake_xlrd):
  del fake_xlrd
  path = tmp_path / "jester-data-1.xls"
  path.write_bytes(xls_bytes(jester_matrix(), text_cell=(2, 7, "oops")))
  with pytest.raises(DataFormatError) as err:
    jester.read_jester_matrix(path)
  assert err.value.line == 3 and f"{path}:3:" in str(err.value) and "oops" in str(err.value)
  path.write_bytes(b"not a workbook")
  with pytest.raises(DataFormatError) as err:
    jester.read_jester_matrix(path)
  assert err.value.line is None and str(path) in str(err.value)


def test_xls_without_xlrd_says_what_to_install(tmp_path, monkeypatch):
  monkeypatch.setitem(sys.modules, "xlrd", None)  # makes `import xlrd` fail
  path = tmp_path / "jester-data-1.xls"
  path.write_bytes(b"whatever")
  with pytest.raises(DataError, match="xlrd") as err:
    jester.read_jester_matrix(path)
  assert str(path) in str(err.value)


@pytest.mark.parametrize("fmt", ["mat", "csv", "xls"])
def test_count_column_disagreeing_names_the_row(tmp_path, fmt, fake_xlrd):
  del fake_xlrd
  x = jester_matrix()
  x[2, 0] += 1
  path = tmp_path / f"jester.{fmt}"
  if fmt == "mat":
    scipy.io.savemat(path, {"X": x})
  elif fmt == "csv":
    path.write_text(to_csv(x))
  else:
    path.write_bytes(xls_bytes(x))
  with pytest.raises(DataFormatError) as err:
    jester.read_jester_matrix(path)
  assert err.value.line == 3 and f"{path}:3:" in str(err.value)
  assert f"count the rated jokes ({int(x[2, 0]) - 1})" in str(err.value)


def test_csv_line_numbers_count_a_header(tmp_path):
  x = jester_matrix()
  x[1, 0] = 0
  header = ",".join(["count"] + [f"joke{j}" for j in range(1, 101)])
  path = tmp_path / "jester.csv"
  path.write_text(header + "\n" + to_csv(x))
  with pytest.raises(DataFormatError) as err:
    jester.read_jester_matrix(path)
  assert err.value.line == 3


def test_nan_and_wrong_shape(tmp_path):
  x = jester_matrix()
  x[3, 50] = np.nan
  path = tmp_path / "j.mat"
  scipy.io.savemat(path, {"X": x})
  with pytest.raises(DataFormatError) as err:
    jester.read_jester_matrix(path)
  assert err.value.line == 4 and "column 50" in str(err.value)
  scipy.io.savemat(path, {"X": jester_matrix()[:, :50]})
  with pytest.raises(DataFormatError, match="101 columns") as err:
    jester.read_jester_matrix(path)
  text_path = tmp_path / "j.csv"
  text_path.write_text("1,2,3\n")
  with pytest.raises(DataFormatError, match="expected 101 fields") as err:
    jester.read_jester_matrix(text_path)
  assert err.value.line == 1


def test_corrupt_and_ambiguous_mat(tmp_path):
  path = tmp_path / "j.mat"
  path.write_bytes(b"MATLAB 5.0 MAT-file" + b"\x00" * 50)
  with pytest.raises(DataFormatError) as err:
    jester.read_jester_matrix(path)
  assert err.value.line is None and str(path) in str(err.value)
  scipy.io.savemat(path, {"A": jester_matrix(), "B": jester_matrix()})
  with pytest.raises(DataFormatError, match="variable X"):
    jester.read_jester_matrix(path)


def test_parts_number_users_consecutively(tmp_path):
  a, b = jester_matrix(3, seed=1), jester_matrix(5, seed=2)
  pa, pb = tmp_path / "p1.mat", tmp_path / "p2.csv"
  scipy.io.savemat(pa, {"X": a})
  pb.write_text(to_csv(b))
  raw = jester.read_jester_parts([(str(pa), None), (str(pb), None)])
  n_a = int(np.sum(a[:, 1:] != 99))
  check(raw.subset(np.arange(n_a)), a)
  check(raw.subset(np.arange(n_a, len(raw))), b, user_offset=3)
  assert raw.where(n_a) == (str(pb), 1)
  assert raw.to_ratings().num_users == 8


def test_a_complex_or_empty_mat_file_is_refused(tmp_path):
  path = tmp_path / "jester3.mat"
  x = jester_matrix().astype(complex)
  x[0, 1] += 1j
  scipy.io.savemat(path, {"X": x})
  with pytest.raises(DataFormatError) as err:
    jester.read_jester_matrix(path)
  assert str(err.value) == f"{path}: expected a real numeric matrix X, got complex128"
  scipy.io.savemat(path, {})
  with pytest.raises(DataFormatError) as err:
    jester.read_jester_matrix(path)
  assert str(err.value) == f"{path}: expected a variable X, got no variables"
