"""Tests for autorec_jax.data.masks: a rating matrix with split masks (Monti et al.).

The same small matrix is written in every container (MATLAB v7.3 dense and sparse,
MATLAB v5, .npz, gzipped) and must read to the same users, items, ratings and parts;
every bad input is one DataFormatError naming the file and the variable.
"""

from __future__ import annotations

import gzip
import logging

import numpy as np
import pytest
import scipy.io
import scipy.sparse as sp

from autorec_jax.config import checks, schema
from autorec_jax.data import datasets, masks, readers, run_data
from autorec_jax.data.datasets import DataConfigError
from autorec_jax.data.errors import DataError, DataFormatError, DataNotFoundError
from configs import movielens_1m
from tests.data.matlab_files import write_v73

# 4 users x 6 items; user 3 (row 3) has no rating, item 4 only a training one.
M = np.array([[5, 0, 3, 0, 0, 1],
              [0, 4, 0, 0, 2, 0],
              [0, 0, 0, 0, 0, 0],
              [2, 0, 5, 4, 0, 0]], dtype=np.float64)
TRAIN = np.zeros_like(M)
TRAIN[[0, 0, 1, 3, 3], [0, 5, 1, 0, 3]] = 1
TEST = np.zeros_like(M)
TEST[[0, 1, 3], [2, 4, 2]] = 1
# Row-major (user id, item id, rating, part): ids are 1-based rows and columns.
EXPECTED = [(1, 1, 5, 0), (1, 3, 3, 2), (1, 6, 1, 0), (2, 2, 4, 0), (2, 5, 2, 2),
            (4, 1, 2, 0), (4, 3, 5, 2), (4, 4, 4, 0)]
MONTI = {"M": M, "Otraining": TRAIN, "Otest": TEST}


def assert_expected(matrix: masks.SplitMatrix, expected=EXPECTED):
  got = list(zip(matrix.raw.user.tolist(), matrix.raw.item.tolist(),
                 matrix.raw.rating.tolist(), matrix.part.tolist()))
  assert got == [tuple(float(v) if i == 2 else v for i, v in enumerate(e))
                 for e in expected]
  assert matrix.shape == M.shape


def write_npz(path, **arrays):
  np.savez(path, **arrays)
  return path


def test_v73_file_stored_transposed_reads_rows_as_users(tmp_path):
  path = tmp_path / "training_test_dataset.mat"
  write_v73(path, MONTI)
  assert path.read_bytes()[512:520] == b"\x89HDF\r\n\x1a\n"  # HDF5 after the header
  matrix = masks.read_split_matrix(path)
  assert_expected(matrix)
  assert matrix.variables == {"ratings": "M", "train": "Otraining", "test": "Otest"}
  assert not matrix.has_valid and matrix.raw.paths == (str(path),)


@pytest.mark.parametrize("sparse", [("M",), ("Otraining", "Otest"),
                                    ("M", "Otraining", "Otest")])
def test_v73_sparse_ir_jc_groups(tmp_path, sparse):
  path = tmp_path / "m.mat"
  write_v73(path, MONTI, sparse=sparse)
  assert_expected(masks.read_split_matrix(path))


def test_v73_sparse_group_without_its_row_count(tmp_path):
  # Rows are then counted to the highest one used: here all 4 (row 3 holds ratings).
  path = tmp_path / "m.mat"
  write_v73(path, MONTI, sparse=("M", "Otest"), row_attr=False)
  assert_expected(masks.read_split_matrix(path))


def test_v5_file_dense_and_sparse(tmp_path):
  path = tmp_path / "m.mat"
  scipy.io.savemat(path, MONTI)
  assert_expected(masks.read_split_matrix(path))
  scipy.io.savemat(path, {"M": sp.csc_matrix(M), "Otraining": sp.csc_matrix(TRAIN),
                          "Otest": TEST.astype(bool)})
  assert_expected(masks.read_split_matrix(path))


def test_npz_with_other_names_and_a_validation_mask(tmp_path):
  valid = np.zeros_like(M)
  valid[3, 3] = 1
  path = write_npz(tmp_path / "m.npz", ratings=M, train_mask=TRAIN - valid,
                   test_mask=TEST, valid_mask=valid)
  matrix = masks.read_split_matrix(path)
  expected = [e if (e[0], e[1]) != (4, 4) else (4, 4, 4, 1) for e in EXPECTED]
  assert_expected(matrix, expected)
  assert matrix.has_valid and matrix.variables["valid"] == "valid_mask"


def test_gzipped_and_zipped_files(tmp_path):
  src = tmp_path / "m.mat"
  write_v73(src, MONTI)
  gz = tmp_path / "m.mat.gz"
  gz.write_bytes(gzip.compress(src.read_bytes(), mtime=0))
  assert_expected(masks.read_split_matrix(gz))


def data_cfg(path, **overrides):
  cfg = schema.base_config().data
  cfg.name, cfg.path, cfg.download = "monti", str(path), False
  for key, value in overrides.items():
    setattr(cfg, key, value)
  return cfg


def test_load_gives_the_fixed_test_part_ids_and_the_train_scale(tmp_path):
  path = tmp_path / "m.mat"
  write_v73(path, MONTI)
  loaded = datasets.load(data_cfg(path))
  r = loaded.ratings
  assert r.user_ids.tolist() == [1, 2, 4] and r.item_ids.tolist() == [1, 2, 3, 4, 5, 6]
  assert loaded.is_predefined_test.tolist() == [e[3] == 2 for e in EXPECTED]
  assert loaded.is_predefined_valid is None and loaded.files == (str(path),)
  assert loaded.rating_scale == (1.0, 5.0)
  assert datasets.load(data_cfg(path, rating_min=0.5)).rating_scale == (0.5, 5.0)
  assert datasets.load(data_cfg(tmp_path)).rating_scale == (1.0, 5.0)  # the folder


def test_the_scale_comes_from_the_ratings_outside_the_test_mask(tmp_path):
  m = M.copy()
  m[1, 4] = 7  # a test rating above every training rating
  path = tmp_path / "m.mat"
  write_v73(path, {**MONTI, "M": m})
  with pytest.raises(DataFormatError) as err:
    datasets.load(data_cfg(path))
  assert str(err.value) == (
      f"{path}: variable M, row 2, column 5 (1-based), a test rating: expected a rating "
      f"in [1, 5], got 7; the scale is the range of the training ratings in {path} "
      "(widen it deliberately with --config.data.rating_min and "
      "--config.data.rating_max)")
  assert datasets.load(data_cfg(path, rating_max=10.0)).rating_scale == (1.0, 10.0)


def run_cfg(path, **data):
  cfg = movielens_1m.get_config("tiny")
  for key, value in dict(name="monti", path=str(path), download=False, **data).items():
    setattr(cfg.data, key, value)
  return cfg


def test_split_test_is_the_mask_and_validation_is_carved_from_train(tmp_path):
  path = tmp_path / "m.mat"
  write_v73(path, MONTI)
  data = run_data.load_data(run_cfg(path, valid_fraction=0.4))
  test = sorted(zip(data.test.user_ids[data.test.user].tolist(),
                    data.test.item_ids[data.test.item].tolist()))
  assert test == [(1, 3), (2, 5), (4, 3)]
  assert len(data.valid.rating) == 2 and len(data.train.rating) == 3
  again = run_data.load_data(run_cfg(path, valid_fraction=0.4, seed=1))
  assert sorted(again.split.test.tolist()) == sorted(data.split.test.tolist())


def test_a_validation_mask_is_the_validation_part(tmp_path):
  valid = np.zeros_like(M)
  valid[0, 5] = 1
  path = write_npz(tmp_path / "m.npz", M=M, Otraining=TRAIN - valid, Otest=TEST,
                   Ovalidation=valid)
  for fraction in (0.05, 0.0):  # the default, or 0
    data = run_data.load_data(run_cfg(path, valid_fraction=fraction))
    assert data.valid.rating.tolist() == [1.0] and len(data.train.rating) == 4
  with pytest.raises(DataConfigError) as err:
    run_data.load_data(run_cfg(path, valid_fraction=0.2))
  assert str(err.value) == (
      f"data.valid_fraction=0.2 would be ignored: {path} has its own validation part "
      "(a validation mask); leave data.valid_fraction at its default or set it to 0")


def test_fields_the_fixed_test_part_overrides_are_refused():
  cfg = movielens_1m.get_config("tiny")
  cfg.data.name = "monti"
  cfg.data.test_fraction = 0.0
  checks.validate(cfg)  # 0 (or the default) says the same thing
  cfg.data.test_fraction, cfg.data.num_folds, cfg.data.test_path = 0.2, 5, "t.csv"
  cfg.data.duplicates = "mean"
  with pytest.raises(checks.ConfigError) as err:
    checks.validate(cfg)
  for field in ("test_path='t.csv'", "num_folds=5", "test_fraction=0.2",
                "duplicates='mean'"):
    assert f"data.{field} is ignored with data.name=monti (the file's test mask" in str(
        err.value)


def test_monti_needs_a_path(tmp_path):
  with pytest.raises(DataConfigError, match=r"data.name='monti' needs data.path"):
    cfg = data_cfg(tmp_path)
    cfg.path = None
    datasets.load(cfg)


def test_left_out_entries_are_counted_in_one_warning_each(tmp_path, caplog):
  m, train = M.copy(), TRAIN.copy()
  m[2, 0] = 3  # a rating in no mask
  train[2, 1] = train[2, 2] = 1  # mask entries on zeros of M
  path = tmp_path / "m.mat"
  write_v73(path, {**MONTI, "M": m, "Otraining": train})
  with caplog.at_level(logging.WARNING):
    assert_expected(masks.read_split_matrix(path))
  messages = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
  assert messages == [
      f"{path}: 1 of the 9 ratings in M are in no mask (Otraining, Otest); they are left "
      "out",
      f"{path}: mask entries on a 0 of M (no rating there) are left out: 2 of Otraining"]


def test_a_split_matrix_given_to_another_reader_names_data_name_monti(tmp_path):
  for path, write in ((tmp_path / "a.mat", lambda p: write_v73(p, MONTI)),
                      (tmp_path / "b.mat", lambda p: scipy.io.savemat(p, MONTI)),
                      (tmp_path / "c.npz", lambda p: write_npz(p, **MONTI))):
    write(path)
    with pytest.raises(DataFormatError) as err:
      readers.read_ratings(path)
    message = str(err.value)
    assert message.startswith(f"{path}: expected ratings as text or a Jester matrix X, "
                              "got ") and all(n in message for n in MONTI)
    assert message.endswith(", a rating matrix with split masks; read it with "
                            "--config.data.name=monti")
    with pytest.raises(DataFormatError, match="data.name=monti"):
      datasets.load(data_cfg(path, name="csv"))
  other = write_npz(tmp_path / "d.npz", a=np.zeros(2))
  with pytest.raises(DataFormatError) as err:
    readers.read_ratings(other)
  assert str(err.value).startswith(f"{other}: expected ratings as text or a Jester "
                                   "matrix, got a NumPy .npz of the arrays a; a rating "
                                   "matrix M or ratings with the masks")


def test_an_hdf5_file_not_named_mat_gets_a_hint(tmp_path):
  path = tmp_path / "ratings.dat"
  write_v73(path, MONTI)
  with pytest.raises(DataFormatError) as err:
    readers.read_ratings(path)
  assert "a MATLAB v7.3 .mat file (name it *.mat to read its Jester matrix X; a rating " \
         "matrix with split masks is read with --config.data.name=monti)" in str(err.value)


# --- Bad inputs: each one DataFormatError, `FILE: ...` naming the variable. ---

def _nan_m():
  m = M.copy()
  m[1, 3] = np.nan
  return {**MONTI, "M": m}


def _inf_mask():
  test = TEST.copy()
  test[2, 2] = np.inf
  return {**MONTI, "Otest": test}


def _overlap():
  test = TEST.copy()
  test[0, 0] = test[3, 3] = 1
  return {**MONTI, "Otest": test}


def _mask_of_ratings():
  return {**MONTI, "Otest": TEST * M}


def _no_train():
  train = np.zeros_like(M)
  train[2, 2] = 1  # only on a 0 of M
  return {**MONTI, "Otraining": train}


def _huge():
  m = M.copy()
  m[0, 0] = 1e39
  return {**MONTI, "M": m}


BAD = {
    "missing_variable": ({"M": M, "Otraining": TRAIN}, "expected a rating matrix M or "
                         "ratings with the masks Otraining or train_mask and Otest or "
                         "test_mask (and optionally Ovalidation or valid_mask), got the "
                         "variables M, Otraining: no Otest or test_mask"),
    "two_names": ({**MONTI, "ratings": M}, "expected one rating matrix, got both M and "
                  "ratings; keep one"),
    "shape_mismatch": ({**MONTI, "Otest": TEST[:, :5]}, "variable Otest: expected the "
                       "shape of M, 4 x 6 (users x items), got 4 x 5"),
    "non_finite_rating": (_nan_m(), "variable M, row 2, column 4 (1-based): expected a "
                          "finite number, got nan"),
    "non_finite_mask": (_inf_mask(), "variable Otest, row 3, column 3 (1-based): expected "
                        "a finite number, got inf"),
    "overlapping_masks": (_overlap(), "variables Otraining and Otest overlap: expected "
                          "disjoint masks (each rating in one part), got row 1, column 1 "
                          "(1-based) in both (2 entries in both)"),
    "mask_not_0_1": (_mask_of_ratings(), "variable Otest, row 1, column 3 (1-based): "
                     "expected a mask of 0s and 1s, got 3"),
    "empty_train": (_no_train(), "variable Otraining: expected at least one training "
                    "rating (an entry that is 1 in Otraining and nonzero in M), got none"),
    "beyond_float32": (_huge(), "variable M, row 1, column 1 (1-based): expected a "
                       "rating within +-3.403e+38 (ratings are stored as float32), got "
                       "1e+39"),
    "char_variable": ({**MONTI}, "expected a real numeric matrix Otest, got a MATLAB char"),
}


# MATLAB class attributes exist in v7.3 files only.
CASES = [(name, container) for name in BAD for container in ("v73", "v5", "npz")
         if name != "char_variable" or container == "v73"]


@pytest.mark.parametrize("name,container", CASES)
def test_bad_input_is_one_line_naming_the_file_and_variable(tmp_path, name, container):
  variables, expected = BAD[name]
  path = tmp_path / ("m.npz" if container == "npz" else "m.mat")
  if name == "char_variable":
    write_v73(path, variables, classes={"Otest": "char"})
  elif container == "v73":
    write_v73(path, variables)
  elif container == "v5":
    scipy.io.savemat(path, variables)
  else:
    write_npz(path, **variables)
  with pytest.raises(DataFormatError) as err:
    masks.read_split_matrix(path)
  assert str(err.value) == f"{path}: {expected}"


def test_corrupt_files(tmp_path):
  good = tmp_path / "good.mat"
  write_v73(good, MONTI)
  truncated = tmp_path / "truncated.mat"
  truncated.write_bytes(good.read_bytes()[:1000])
  with pytest.raises(DataFormatError) as err:
    masks.read_split_matrix(truncated)
  assert str(err.value).startswith(f"{truncated}: expected a MATLAB v7.3 (HDF5) .mat "
                                   "file, got an unreadable one (")
  npz = write_npz(tmp_path / "m.npz", **MONTI)
  cut = tmp_path / "cut.npz"
  cut.write_bytes(npz.read_bytes()[:-300])
  with pytest.raises(DataFormatError, match=r"expected a complete zip archive, got a "
                                            r"truncated or corrupt one"):
    masks.read_split_matrix(cut)
  text = tmp_path / "r.csv"
  text.write_text("1,2,3\n")
  with pytest.raises(DataFormatError) as err:
    masks.read_split_matrix(text)
  assert str(err.value) == (f"{text}: expected a MATLAB .mat (v5 or v7.3) or NumPy .npz "
                            f"file holding {masks.layout_text()}, got neither")


def test_a_1d_array_and_an_inconsistent_sparse_group(tmp_path):
  path = write_npz(tmp_path / "m.npz", **{**MONTI, "Otest": np.zeros(6)})
  with pytest.raises(DataFormatError) as err:
    masks.read_split_matrix(path)
  assert str(err.value) == (f"{path}: variable Otest: expected a 2-D matrix (rows users, "
                            "columns items), got shape (6,)")
  import h5py  # pylint: disable=import-outside-toplevel
  mat = tmp_path / "m.mat"
  write_v73(mat, MONTI, sparse=("Otest",))
  with h5py.File(mat, "r+") as f:
    del f["Otest"]["ir"]
    f["Otest"]["ir"] = np.array([0, 9, 3], np.uint64)  # row 9 of 4
  with pytest.raises(DataFormatError) as err:
    masks.read_split_matrix(mat)
  assert str(err.value).startswith(f"{mat}: variable Otest: expected a MATLAB sparse "
                                   "matrix (data, ir, jc), got an inconsistent one (")


def test_v73_without_h5py_names_the_extra(tmp_path, monkeypatch):
  path = tmp_path / "m.mat"
  write_v73(path, MONTI)
  monkeypatch.setitem(__import__("sys").modules, "h5py", None)  # import fails
  with pytest.raises(DataError) as err:
    masks.read_split_matrix(path)
  assert str(err.value) == (f"{path}: reading MATLAB v7.3 (HDF5) .mat files needs the "
                            "optional h5py package: pip install 'autorec_jax[mat]' (or "
                            "pip install h5py)")
  scipy.io.savemat(path, MONTI)  # v5 needs nothing extra
  assert_expected(masks.read_split_matrix(path))


def test_folders(tmp_path):
  with pytest.raises(DataNotFoundError, match="no .mat or .npz file found"):
    masks.find_file(str(tmp_path))
  write_v73(tmp_path / "a.mat", MONTI)
  assert masks.find_file(str(tmp_path)) == str(tmp_path / "a.mat")
  write_npz(tmp_path / "b.npz", **MONTI)
  with pytest.raises(DataFormatError, match=r"expected one .mat or .npz file in the "
                                            r"folder, got a.mat, b.npz"):
    masks.find_file(str(tmp_path))
