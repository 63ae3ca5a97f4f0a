"""Tests for autorec_jax.data.datasets: registry, locating, downloading, `load`."""

import dataclasses
import gzip
import hashlib
import logging
import os
import re
import types
import urllib.error
import urllib.request
import zipfile

import numpy as np
import pytest
import scipy.io
from ml_collections import config_dict

from autorec_jax.data import datasets, errors
from autorec_jax.data.errors import DataError, DataFormatError, DataNotFoundError
from tests import conftest
from tests.data.jester_test import install_fake_xlrd, jester_matrix, xls_bytes

# Read before the autouse fixture below clears the variable for the other tests.
REAL_DATA_DIR = str(conftest.shared_data_dir())
RATINGS_DAT = "1::1193::5::978300760\n1::661::3::978302109\n2::1193::4::978298413\n"
NO_TIMESTAMPS = "user_id,movie_id,rating\n1,1193,5\n1,661,3\n2,1193,4\n"


def data_cfg(**overrides) -> config_dict.ConfigDict:
  """A data config with the fields `load` reads (as in configs/)."""
  cfg = config_dict.ConfigDict()
  cfg.name = "movielens_1m"
  cfg.path = config_dict.placeholder(str)
  cfg.test_path = config_dict.placeholder(str)
  cfg.download = False
  cfg.duplicates = "error"
  cfg.csv_delimiter = config_dict.placeholder(str)
  cfg.csv_header = "auto"
  cfg.csv_columns = (0, 1, 2)
  cfg.rating_min = config_dict.placeholder(float)
  cfg.rating_max = config_dict.placeholder(float)
  cfg.update(overrides)
  return cfg


def csv_cfg(train, test=None, **overrides):
  """A data config for data.name=csv, the columns taken from the files."""
  return data_cfg(name="csv", path=str(train), test_path=None if test is None else str(test),
                  csv_columns=(), **overrides)


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
  """A fresh HOME (so the cache is empty), no AUTOREC_DATA_DIR, and no network."""
  monkeypatch.setenv("HOME", str(tmp_path / "home"))
  monkeypatch.delenv(datasets.ENV_VAR, raising=False)

  def offline(url, timeout=None):
    raise urllib.error.URLError("network is unreachable")
  monkeypatch.setattr(datasets, "_urlopen", offline)


def cache_dir(tmp_path):
  return tmp_path / "home" / ".cache" / "autorec_jax"


def make_zip(path, members):
  path.parent.mkdir(parents=True, exist_ok=True)
  with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
    for name, content in members.items():
      zf.writestr(name, content)
  return path


def serve(monkeypatch, name, files, *, sha256=True, size=True, extra_urls=()):
  """Points `name`'s archives at local file:// URLs and allows the URL opener."""
  spec = datasets.REGISTRY[name]
  archives = []
  for archive, path in zip(spec.archives, files):
    data = path.read_bytes()
    archives.append(dataclasses.replace(
        archive, urls=tuple(extra_urls) + (path.as_uri(),),
        sha256=hashlib.sha256(data).hexdigest() if sha256 is True else sha256,
        size=len(data) if size is True else size))
  monkeypatch.setitem(datasets.REGISTRY, name,
                      dataclasses.replace(spec, archives=tuple(archives)))
  monkeypatch.setattr(datasets, "_urlopen", urllib.request.urlopen)


OFFICIAL_URL = r"https://(files\.grouplens\.org|eigentaste\.berkeley\.edu)/.+\.zip"


def test_registry_entries_are_complete():
  assert {"movielens_100k", "movielens_1m", "movielens_10m", "movielens_20m",
          "movielens_25m", "jester", "csv"} <= set(datasets.REGISTRY)
  for name, spec in datasets.REGISTRY.items():
    assert spec.name == name
    if name in ("csv", "monti"):  # generic readers: data.path is required
      assert not spec.archives and spec.rating_scale is None and not spec.layouts
      continue
    if name == "netflix":  # converted splits only: no download, no raw layouts
      assert not spec.archives and spec.rating_scale == (1.0, 5.0)
      continue
    lo, hi = spec.rating_scale
    assert lo < hi and spec.layouts
    for archive in spec.archives:
      assert re.fullmatch(OFFICIAL_URL, archive.urls[0]), archive.urls
      assert re.fullmatch(r"[0-9a-f]{64}", archive.sha256) and archive.size > 0
      assert archive.urls[0].endswith("/" + archive.filename) and archive.member
      # the downloaded archive is one of the layouts `locate` looks for
      assert any(s.relpath == archive.filename and s.member == archive.member
                 for layout in spec.layouts for s in layout.sources)


def test_search_dirs(tmp_path, monkeypatch):
  assert datasets.search_dirs() == [str(cache_dir(tmp_path))]
  monkeypatch.setenv(datasets.ENV_VAR, str(tmp_path / "data"))
  assert datasets.search_dirs() == [str(tmp_path / "data"), str(cache_dir(tmp_path))]


def test_official_layout_under_data_dir(tmp_path, monkeypatch):
  folder = tmp_path / "data" / "ml-1m"
  folder.mkdir(parents=True)
  (folder / "ratings.dat").write_text(RATINGS_DAT)
  (folder / "movies.dat").write_text("1193::One Flew::Drama\n")
  monkeypatch.setenv(datasets.ENV_VAR, str(tmp_path / "data"))
  loaded = datasets.load(data_cfg())
  r = loaded.ratings
  assert (r.num_ratings, r.num_users, r.num_items) == (3, 2, 2)
  np.testing.assert_array_equal(r.timestamp, [978300760, 978302109, 978298413])
  assert loaded.rating_scale == (1.0, 5.0) and loaded.is_predefined_test is None
  assert loaded.titles_path == str(folder / "movies.dat")
  assert r.source == str(folder / "ratings.dat")


def test_shared_layouts(tmp_path, monkeypatch, caplog):
  root = tmp_path / "shared"
  (root / "movielens-1m").mkdir(parents=True)
  (root / "movielens-1m" / "ratings_no_timestamps.csv.gz").write_bytes(
      gzip.compress(NO_TIMESTAMPS.encode()))
  (root / "movielens-1m" / "movies.dat").write_text("1::x::y\n")
  (root / "jester" / "dataset1-part3").mkdir(parents=True)
  x = jester_matrix()
  scipy.io.savemat(root / "jester" / "dataset1-part3" / "jester3.mat", {"X": x})
  monkeypatch.setenv(datasets.ENV_VAR, str(root))
  ml = datasets.load(data_cfg())
  assert ml.ratings.num_ratings == 3 and ml.ratings.timestamp is None
  assert ml.titles_path.endswith("movielens-1m/movies.dat")
  with caplog.at_level(logging.WARNING):
    jester = datasets.load(data_cfg(name="jester"))
  assert jester.ratings.num_ratings == int(np.sum(x[:, 1:] != 99))
  assert jester.rating_scale == (-10.0, 10.0) and jester.titles_path is None
  assert "part 3 only" in caplog.text


def test_cache_dir_zip_and_explicit_path_first(tmp_path, monkeypatch):
  make_zip(cache_dir(tmp_path) / "ml-1m.zip", {"ml-1m/ratings.dat": RATINGS_DAT})
  assert datasets.load(data_cfg()).ratings.num_ratings == 3
  own = tmp_path / "mine.dat"
  own.write_text("7::8::2::0\n")
  loaded = datasets.load(data_cfg(path=str(own)))
  assert loaded.ratings.num_ratings == 1 and loaded.ratings.source == str(own)


def test_explicit_folder_is_searched_then_sniffed(tmp_path):
  parent = tmp_path / "downloads"
  make_zip(parent / "ml-1m.zip", {"ml-1m/ratings.dat": RATINGS_DAT})
  assert datasets.load(data_cfg(path=str(parent))).ratings.num_ratings == 3
  folder = tmp_path / "anywhere"
  folder.mkdir()
  (folder / "ratings.dat").write_text(RATINGS_DAT)
  (folder / "movies.dat").write_text("1::x::y\n")
  loaded = datasets.load(data_cfg(path=str(folder)))
  assert loaded.ratings.num_ratings == 3
  assert loaded.titles_path == str(folder / "movies.dat")
  with pytest.raises(DataNotFoundError, match="no such file"):
    datasets.load(data_cfg(path=str(tmp_path / "missing")))
  other = tmp_path / "ml-100k"  # another dataset's folder is not taken for ML-1M
  other.mkdir()
  (other / "u.data").write_text("1\t2\t3\t4\n")
  with pytest.raises(DataNotFoundError, match="dataset movielens_1m not found"):
    datasets.load(data_cfg(path=str(other)))


def test_predefined_test_file(tmp_path):
  base, test = tmp_path / "u1.base", tmp_path / "u1.test"
  base.write_text("1\t10\t5\t1\n2\t10\t4\t2\n2\t20\t3\t3\n")
  test.write_text("1\t20\t2\t4\n3\t30\t1\t5\n")
  loaded = datasets.load(data_cfg(name="movielens_100k", path=str(base),
                                  test_path=str(test)))
  r = loaded.ratings
  assert (r.num_ratings, r.num_users, r.num_items) == (5, 3, 3)
  np.testing.assert_array_equal(loaded.is_predefined_test, [0, 0, 0, 1, 1])
  np.testing.assert_array_equal(r.item_ids, [10, 20, 30])  # one index space
  np.testing.assert_array_equal(r.item[loaded.is_predefined_test], [1, 2])
  test.write_text("1\t20\t2\t4\n2\t20\t1\t5\n")
  with pytest.raises(DataFormatError) as err:
    datasets.load(data_cfg(name="movielens_100k", path=str(base), test_path=str(test)))
  assert f"{test}:2:" in str(err.value) and f"{base}:3" in str(err.value)


def test_rating_outside_the_scale(tmp_path):
  path = tmp_path / "ratings.dat"
  path.write_text(RATINGS_DAT + "3::5::6::0\n")
  with pytest.raises(DataFormatError) as err:
    datasets.load(data_cfg(path=str(path)))
  assert err.value.line == 4 and f"{path}:4:" in str(err.value)
  assert "[1, 5]" in str(err.value)
  assert datasets.load(data_cfg(path=str(path), rating_max=6.0)).rating_scale == (1.0, 6.0)
  with pytest.raises(DataError, match="empty"):
    datasets.load(data_cfg(path=str(path), rating_min=5.0, rating_max=5.0))


def test_generic_csv(tmp_path):
  path = tmp_path / "mine.tsv"
  path.write_text("item\tuser\tstars\n10\t1\t2.5\n11\t1\t7\n10\t2\t4\n")
  loaded = datasets.load(data_cfg(name="csv", path=str(path), csv_columns=(1, 0, 2)))
  assert loaded.rating_scale == (2.5, 7.0)  # observed range
  assert (loaded.ratings.num_users, loaded.ratings.num_items) == (2, 2)
  loaded = datasets.load(data_cfg(name="csv", path=str(path), csv_delimiter="tab",
                                  csv_header="yes", csv_columns=(1, 0, 2),
                                  rating_min=0.0, rating_max=10.0))
  assert loaded.rating_scale == (0.0, 10.0)
  with pytest.raises(DataFormatError) as err:  # a header where none is declared
    datasets.load(data_cfg(name="csv", path=str(path), csv_header="no"))
  assert f"{path}:1:" in str(err.value)


@pytest.mark.parametrize("overrides,match", [
    (dict(name="netflix_prize"), "unknown dataset"),
    (dict(duplicates="first"), "data.duplicates"),
    (dict(name="csv"), "needs data.path"),
    (dict(name="csv", path="x.csv", csv_header="maybe"), "csv_header"),
    (dict(name="csv", path="x.csv", csv_columns=(0, 0, 1)), "csv_columns"),
    (dict(name="csv", path="x.csv", csv_delimiter="--"), "csv_delimiter"),
])
def test_config_errors(overrides, match):
  with pytest.raises(datasets.DataConfigError, match=match) as err:
    datasets.load(data_cfg(**overrides))
  assert isinstance(err.value, DataError)


def test_any_object_with_attributes(tmp_path):
  path = tmp_path / "u.data"
  path.write_text("1\t2\t3\t4\n1\t2\t5\t6\n")
  cfg = types.SimpleNamespace(name="movielens_100k", path=str(path), duplicates="mean")
  loaded = datasets.load(cfg)
  assert loaded.ratings.num_ratings == 1 and loaded.ratings.rating[0] == 4.0


def test_missing_dataset_says_what_to_put_where(tmp_path, monkeypatch):
  monkeypatch.setenv(datasets.ENV_VAR, str(tmp_path / "data"))
  with pytest.raises(DataNotFoundError) as err:
    datasets.load(data_cfg(name="movielens_10m"))
  msg = str(err.value)
  assert "\n" not in msg
  for part in ("movielens_10m", "https://files.grouplens.org/datasets/movielens/ml-10m.zip",
               "ml-10m.zip", str(cache_dir(tmp_path)), str(tmp_path / "data"),
               "ml-10M100K/ratings.dat", "AUTOREC_DATA_DIR", "data.download=True"):
    assert part in msg, part


def test_a_rating_between_the_data_sets_steps_is_an_error(tmp_path):
  folder = tmp_path / "ml-1m"
  folder.mkdir()
  (folder / "ratings.dat").write_text(RATINGS_DAT + "3::1193::3.5::978300760\n")
  with pytest.raises(DataFormatError, match=r"ratings.dat:4: expected a rating in steps of "
                     r"1 as movielens_1m has, got 3.5"):
    datasets.load(data_cfg(path=str(tmp_path)))
  # A mean of repeated ratings may fall between steps.
  (folder / "ratings.dat").write_text(RATINGS_DAT + "1::1193::4::978300761\n")
  loaded = datasets.load(data_cfg(path=str(tmp_path), duplicates="mean"))
  assert sorted(loaded.ratings.rating.tolist()) == [3.0, 4.0, 4.5]


def test_a_data_dir_that_is_no_folder_is_said_first(tmp_path, monkeypatch):
  (tmp_path / "a_file").write_text("x")
  for value, says in ((tmp_path / "a_file", "expected a folder, got a file"),
                      (tmp_path / "missing", "no such folder")):
    monkeypatch.setenv(datasets.ENV_VAR, str(value))
    with pytest.raises(DataNotFoundError, match=(
        rf"^dataset movielens_10m not found \(AUTOREC_DATA_DIR={value}: {says}\): ")):
      datasets.load(data_cfg(name="movielens_10m"))


def test_no_network_gives_the_same_advice(tmp_path):
  with pytest.raises(DataNotFoundError) as err:
    datasets.load(data_cfg(download=True))
  msg = str(err.value)
  assert "download failed" in msg and "network is unreachable" in msg
  assert "https://files.grouplens.org/datasets/movielens/ml-1m.zip" in msg
  assert not cache_dir(tmp_path).exists() or not os.listdir(cache_dir(tmp_path))


def test_download_verifies_and_renames(tmp_path, monkeypatch):
  archive = make_zip(tmp_path / "server" / "ml-1m.zip", {"ml-1m/ratings.dat": RATINGS_DAT})
  serve(monkeypatch, "movielens_1m", [archive])
  loaded = datasets.load(data_cfg(download=True))
  assert loaded.ratings.num_ratings == 3
  assert os.listdir(cache_dir(tmp_path)) == ["ml-1m.zip"]  # no temporary file left
  assert (cache_dir(tmp_path) / "ml-1m.zip").read_bytes() == archive.read_bytes()
  archive.unlink()  # a second load uses the cached copy
  assert datasets.load(data_cfg(download=True)).ratings.num_ratings == 3


def test_download_into_an_explicit_folder_and_from_a_mirror(tmp_path, monkeypatch):
  archive = make_zip(tmp_path / "server" / "ml-1m.zip", {"ml-1m/ratings.dat": RATINGS_DAT})
  serve(monkeypatch, "movielens_1m", [archive],
        extra_urls=[(tmp_path / "server" / "gone.zip").as_uri()])
  target = tmp_path / "mydata"
  target.mkdir()
  loaded = datasets.load(data_cfg(path=str(target), download=True))
  assert loaded.ratings.num_ratings == 3 and os.listdir(target) == ["ml-1m.zip"]


@pytest.mark.parametrize("sha256,size", [("0" * 64, True), (None, 5)])
def test_download_with_wrong_checksum_or_size_is_discarded(tmp_path, monkeypatch, sha256,
                                                           size):
  archive = make_zip(tmp_path / "server" / "ml-1m.zip", {"ml-1m/ratings.dat": RATINGS_DAT})
  serve(monkeypatch, "movielens_1m", [archive], sha256=sha256, size=size)
  with pytest.raises(DataFormatError) as err:
    datasets.load(data_cfg(download=True))
  assert archive.as_uri() in str(err.value) and "discarded" in str(err.value)
  assert not os.listdir(cache_dir(tmp_path))


def test_download_verified_by_size_alone(tmp_path, monkeypatch):
  archive = make_zip(tmp_path / "server" / "ml-1m.zip", {"ml-1m/ratings.dat": RATINGS_DAT})
  serve(monkeypatch, "movielens_1m", [archive], sha256=None)
  assert datasets.load(data_cfg(download=True)).ratings.num_ratings == 3


def test_jester_downloads_all_three_parts(tmp_path, monkeypatch):
  install_fake_xlrd(monkeypatch)
  parts = [jester_matrix(k + 2, seed=k) for k in range(3)]
  files = [make_zip(tmp_path / "server" / f"jester_dataset_1_{k}.zip",
                    {f"jester-data-{k}.xls": xls_bytes(x)})
           for k, x in enumerate(parts, start=1)]
  serve(monkeypatch, "jester", files)
  loaded = datasets.load(data_cfg(name="jester", download=True))
  r = loaded.ratings
  assert r.num_users == 2 + 3 + 4
  assert r.num_ratings == sum(int(np.sum(x[:, 1:] != 99)) for x in parts)
  assert sorted(os.listdir(cache_dir(tmp_path))) == [f"jester_dataset_1_{k}.zip"
                                                     for k in (1, 2, 3)]


def test_real_movielens_1m(monkeypatch):
  monkeypatch.setenv(datasets.ENV_VAR, REAL_DATA_DIR)
  conftest.require_data("movielens-1m/ratings_no_timestamps.csv.gz")
  loaded = datasets.load(data_cfg())
  r = loaded.ratings
  assert (r.num_ratings, r.num_users, r.num_items) == (1_000_209, 6_040, 3_706)
  assert loaded.rating_scale == (1.0, 5.0) and loaded.titles_path.endswith("movies.dat")


def test_real_jester(monkeypatch):
  monkeypatch.setenv(datasets.ENV_VAR, REAL_DATA_DIR)
  conftest.require_data("jester/dataset1-part3/jester3.mat")
  r = datasets.load(data_cfg(name="jester")).ratings
  assert (r.num_ratings, r.num_users, r.num_items) == (616_912, 24_938, 100)


# ----------------------------------------------------------------------------------------
# The rating scale comes from the training data, never from a predefined test file.


def test_the_scale_is_taken_from_train_and_a_test_rating_outside_it_is_named(tmp_path):
  train, test = tmp_path / "train.csv", tmp_path / "test.csv"
  train.write_text("1,10,2\n2,11,4\n3,10,3\n")
  test.write_text("1,11,3\n2,10,9\n")
  with pytest.raises(DataFormatError) as err:
    datasets.load(csv_cfg(train, test))
  assert str(err.value) == (
      f"{test}:2: expected a rating in [2, 4], got 9; the scale is the range of the "
      f"training ratings in {train} (widen it deliberately with "
      "--config.data.rating_min and --config.data.rating_max)")
  test.write_text("1,11,3\n2,10,2\n")
  assert datasets.load(csv_cfg(train, test)).rating_scale == (2.0, 4.0)
  test.write_text("1,11,1\n2,10,9\n")  # the flags widen it deliberately
  loaded = datasets.load(csv_cfg(train, test, rating_min=1.0, rating_max=10.0))
  assert loaded.rating_scale == (1.0, 10.0)


def test_a_test_rating_can_not_widen_the_scale_on_one_side_either(tmp_path):
  train, test = tmp_path / "train.csv", tmp_path / "test.csv"
  train.write_text("1,10,2\n2,11,4\n")
  test.write_text("1,11,1\n")
  with pytest.raises(DataFormatError, match="expected a rating in \\[2, 4\\], got 1"):
    datasets.load(csv_cfg(train, test))
  with pytest.raises(DataFormatError, match="expected a rating in \\[2, 5\\], got 1; the "
                     "scale is the range of the training ratings in .* with "
                     "data.rating_max from the config"):
    datasets.load(csv_cfg(train, test, rating_max=5.0))
  assert datasets.load(csv_cfg(train, test, rating_min=1.0)).rating_scale == (1.0, 4.0)


def test_a_fixed_scale_names_its_data_set(tmp_path):
  base, test = tmp_path / "u1.base", tmp_path / "u1.test"
  base.write_text("1\t10\t5\t1\n2\t10\t4\t2\n")
  test.write_text("1\t20\t6\t4\n")
  with pytest.raises(DataFormatError) as err:
    datasets.load(data_cfg(name="movielens_100k", path=str(base), test_path=str(test)))
  assert str(err.value).startswith(f"{test}:1: expected a rating in [1, 5], got 6; the "
                                   "scale is the movielens_100k rating scale (widen it")


def test_training_ratings_of_one_value_give_no_scale(tmp_path):
  train = tmp_path / "one.csv"
  train.write_text("user,item,rating\n1,10,4\n")
  with pytest.raises(DataFormatError) as err:
    datasets.load(csv_cfg(train))
  assert str(err.value) == (
      f"{train}: expected ratings of at least two values to take the rating scale from, "
      "got only 4 (1 rating); set the scale with --config.data.rating_min and "
      "--config.data.rating_max")
  assert datasets.load(csv_cfg(train, rating_min=1.0, rating_max=5.0)).ratings.num_ratings == 1


def test_a_rating_beyond_float32_is_refused(tmp_path):
  train = tmp_path / "big.csv"
  train.write_text("1,10,4\n2,11,1e300\n")
  with pytest.raises(DataFormatError) as err:
    datasets.load(csv_cfg(train))
  assert str(err.value) == (f"{train}:2: expected a rating within +-3.403e+38 (ratings are "
                            "stored as float32), got 1e+300")


# ----------------------------------------------------------------------------------------
# Special files as data.path, or in a searched folder.


def test_a_named_pipe_as_data_path_or_in_the_data_dir(tmp_path, monkeypatch):
  fifo = tmp_path / "ratings.dat"
  os.mkfifo(fifo)
  for cfg in (data_cfg(path=str(fifo)), csv_cfg(fifo)):
    with pytest.raises(errors.DataAccessError) as err:
      datasets.load(cfg)
    assert str(err.value) == f"{fifo}: expected a file or folder, got a named pipe (FIFO)"
  root = tmp_path / "data"
  (root / "ml-1m").mkdir(parents=True)
  os.mkfifo(root / "ml-1m" / "ratings.dat")
  monkeypatch.setenv(datasets.ENV_VAR, str(root))
  with pytest.raises(errors.DataAccessError, match="ml-1m/ratings.dat: expected a file, "
                     "got a named pipe"):
    datasets.load(data_cfg())  # found and named, not passed over for "not found"


def test_a_missing_or_looping_data_path(tmp_path):
  with pytest.raises(DataNotFoundError) as err:
    datasets.load(data_cfg(path=str(tmp_path / "nope.dat")))
  assert str(err.value) == (f"{tmp_path / 'nope.dat'}: no such file or folder (data.path "
                            "for movielens_1m)")
  os.symlink(tmp_path / "loop", tmp_path / "loop")
  with pytest.raises(errors.DataAccessError, match="got a symbolic link loop"):
    datasets.load(data_cfg(path=str(tmp_path / "loop")))


@pytest.mark.parametrize("key", ["path", "test_path"])
def test_an_empty_path_is_a_config_error(tmp_path, key):
  train = tmp_path / "r.csv"
  train.write_text("1,10,2\n2,11,4\n")
  cfg = csv_cfg(train)
  cfg[key] = " "
  with pytest.raises(datasets.DataConfigError) as err:
    datasets.load(cfg)
  assert str(err.value) == (f"--config.data.{key}=' ' is empty; give a file or folder, or "
                            "leave it unset")
