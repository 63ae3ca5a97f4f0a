"""Tests for autorec_jax.data.readers: official formats and format sniffing."""

import gzip
import zipfile

import numpy as np
import pytest
import scipy.io

from autorec_jax.data import readers
from autorec_jax.data.errors import DataFormatError, DataNotFoundError
from tests import conftest

# Three users, four items; the same ratings in every official layout below.
TRIPLES = [(1, 1193, 5.0, 978300760), (1, 661, 3.0, 978302109), (2, 1193, 4.0, 978298413),
           (3, 914, 1.0, 978301968), (3, 661, 2.0, 978300275)]
U_DATA = "".join(f"{u}\t{i}\t{int(r)}\t{t}\n" for u, i, r, t in TRIPLES)
RATINGS_DAT = "".join(f"{u}::{i}::{int(r)}::{t}\n" for u, i, r, t in TRIPLES)
RATINGS_CSV = "userId,movieId,rating,timestamp\n" + "".join(
    f"{u},{i},{r:.1f},{t}\n" for u, i, r, t in TRIPLES)
NO_TIMESTAMPS = "user_id,movie_id,rating\n" + "".join(
    f"{u},{i},{int(r)}\n" for u, i, r, _ in TRIPLES)


def check(raw, with_timestamps=True):
  users, items, ratings, stamps = map(np.array, zip(*TRIPLES))
  np.testing.assert_array_equal(raw.user, users)
  np.testing.assert_array_equal(raw.item, items)
  np.testing.assert_array_equal(raw.rating, ratings)
  if with_timestamps:
    np.testing.assert_array_equal(raw.timestamp, stamps)
  else:
    assert raw.timestamp is None


def make_zip(path, members):
  with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
    for name, content in members.items():
      zf.writestr(name, content)
  return path


@pytest.mark.parametrize("name", ["u.data", "u1.base", "u1.test", "ua.base", "ub.test"])
def test_movielens_100k_files(tmp_path, name):
  path = tmp_path / name
  path.write_text(U_DATA)
  check(readers.read_ratings(path))
  check(readers.read_movielens_100k(path))


def test_movielens_dat_plain_gz_and_zip(tmp_path):
  plain = tmp_path / "ratings.dat"
  plain.write_text(RATINGS_DAT)
  check(readers.read_ratings(plain))
  check(readers.read_movielens_dat(plain))
  gz = tmp_path / "ratings.dat.gz"
  gz.write_bytes(gzip.compress(RATINGS_DAT.encode()))
  check(readers.read_ratings(gz))
  zp = make_zip(tmp_path / "ml-1m.zip", {"ml-1m/movies.dat": "1::Toy Story::Comedy\n",
                                         "ml-1m/ratings.dat": RATINGS_DAT,
                                         "ml-1m/users.dat": "1::F::1::10::48067\n"})
  raw = readers.read_ratings(zp)
  check(raw)
  assert raw.paths == (f"{zp}:ml-1m/ratings.dat",)
  check(readers.read_movielens_dat(zp, "ml-1m/ratings.dat"))


def test_movielens_10m_zip_layout(tmp_path):
  zp = make_zip(tmp_path / "ml-10m.zip", {"ml-10M100K/ratings.dat": RATINGS_DAT,
                                          "ml-10M100K/tags.dat": "1::2::x::3\n"})
  check(readers.read_ratings(zp))


@pytest.mark.parametrize("folder", ["ml-20m", "ml-25m", "ml-latest-small"])
def test_movielens_csv_plain_and_zip(tmp_path, folder):
  plain = tmp_path / "ratings.csv"
  plain.write_text(RATINGS_CSV)
  check(readers.read_ratings(plain))
  check(readers.read_movielens_csv(plain))
  zp = make_zip(tmp_path / f"{folder}.zip", {f"{folder}/movies.csv": "movieId,title\n",
                                             f"{folder}/ratings.csv": RATINGS_CSV,
                                             f"{folder}/tags.csv": "userId,tag\n"})
  check(readers.read_ratings(zp))


def test_movielens_csv_checks_its_header(tmp_path):
  path = tmp_path / "ratings.csv"
  path.write_text(NO_TIMESTAMPS)
  with pytest.raises(DataFormatError) as err:
    readers.read_movielens_csv(path)
  assert err.value.line == 1 and f"{path}:1:" in str(err.value)


def test_movielens_dat_rejects_other_layouts(tmp_path):
  path = tmp_path / "ratings.dat"
  path.write_text(RATINGS_DAT + "4::5::3\n")
  with pytest.raises(DataFormatError) as err:
    readers.read_ratings(path)
  assert err.value.line == 6 and f"{path}:6:" in str(err.value)
  assert "expected 4 fields" in str(err.value)


def test_u_data_with_bad_rating(tmp_path):
  path = tmp_path / "u.data"
  path.write_text(U_DATA.replace("\t1\t", "\tone\t"))
  with pytest.raises(DataFormatError) as err:
    readers.read_ratings(path)
  assert err.value.line == 4 and f"{path}:4:" in str(err.value)


def test_triplets_gz_with_header(tmp_path):
  path = tmp_path / "ratings_no_timestamps.csv.gz"
  path.write_bytes(gzip.compress(NO_TIMESTAMPS.encode()))
  check(readers.read_ratings(path), with_timestamps=False)
  jester_path = tmp_path / "ratings.csv.gz"
  jester_path.write_bytes(gzip.compress(b"user_id,joke_id,rating\n1,5,-1.65\n1,7,0\n"))
  raw = readers.read_ratings(jester_path)
  np.testing.assert_array_equal(raw.rating, [-1.65, 0.0])


@pytest.mark.parametrize("sep", ["\t", " ", ","])
def test_generic_text_sniffed(tmp_path, sep):
  path = tmp_path / "mine.txt"
  path.write_text("".join(f"{u}{sep}{i}{sep}{int(r)}{sep}{t}\n" for u, i, r, t in TRIPLES))
  check(readers.read_ratings(path))


def test_generic_options_override_official_names(tmp_path):
  path = tmp_path / "u.data"  # an official name, but the caller says what it holds
  path.write_text("".join(f"{i};{u};{int(r)}\n" for u, i, r, _ in TRIPLES))
  raw = readers.read_ratings(path, delimiter=";", columns=(1, 0, 2))
  check(raw, with_timestamps=False)


def test_folder_sniffing(tmp_path):
  ml1m = tmp_path / "ml-1m"
  ml1m.mkdir()
  (ml1m / "ratings.dat").write_text(RATINGS_DAT)
  (ml1m / "movies.dat").write_text("1193::x::Drama\n")
  check(readers.read_ratings(ml1m))
  shared = tmp_path / "movielens-1m"
  shared.mkdir()
  (shared / "ratings_no_timestamps.csv.gz").write_bytes(
      gzip.compress(NO_TIMESTAMPS.encode()))
  (shared / "users.dat").write_text("1::F::1::10::48067\n")
  check(readers.read_ratings(shared), with_timestamps=False)
  ml100k = tmp_path / "ml-100k"
  ml100k.mkdir()
  for name in ("u.data", "u1.base", "u1.test"):
    (ml100k / name).write_text(U_DATA if name == "u.data" else "1\t2\t3\t4\n")
  check(readers.read_ratings(ml100k))
  archives = tmp_path / "archives"
  archives.mkdir()
  make_zip(archives / "ml-1m.zip", {"ml-1m/ratings.dat": RATINGS_DAT})
  check(readers.read_ratings(archives))


def test_folder_prefers_the_original_jester_matrix(tmp_path):
  x = np.full((2, 101), 99.0)
  x[0, [0, 5]] = [1, 3.5]
  x[1, [0, 1, 100]] = [2, -2, 10]
  folder = tmp_path / "dataset1-part3"
  folder.mkdir()
  scipy.io.savemat(folder / "jester3.mat", {"X": x})
  (folder / "ratings.csv.gz").write_bytes(
      gzip.compress(b"user_id,joke_id,rating\n1,5,3.5\n2,1,-2\n2,100,10\n"))
  from_mat = readers.read_ratings(folder)
  from_csv = readers.read_ratings(folder / "ratings.csv.gz")
  assert from_mat.paths == (str(folder / "jester3.mat"),)
  for a, b in ((from_mat.user, from_csv.user), (from_mat.item, from_csv.item),
               (from_mat.rating, from_csv.rating)):
    np.testing.assert_array_equal(a, b)


def test_text_with_101_fields_is_a_jester_matrix(tmp_path):
  row = ["2"] + ["99"] * 100
  row[3], row[10] = "1.5", "-3"
  path = tmp_path / "jester.csv"
  path.write_text(",".join(row) + "\n")
  raw = readers.read_ratings(path)
  np.testing.assert_array_equal(raw.item, [3, 10])
  np.testing.assert_array_equal(raw.rating, [1.5, -3])


def test_folder_with_several_jester_parts(tmp_path):
  folder = tmp_path / "jester"
  folder.mkdir()
  for k in (1, 2):
    x = np.full((k, 101), 99.0)
    x[:, 0], x[:, k] = 1, float(k)
    with zipfile.ZipFile(folder / f"jester_dataset_1_{k}.zip", "w") as zf:
      zf.writestr(f"jester-data-{k}.csv",
                  "".join(",".join(f"{v:g}" for v in row) + "\n" for row in x))
  raw = readers.read_ratings(folder)
  np.testing.assert_array_equal(raw.user, [1, 2, 3])
  np.testing.assert_array_equal(raw.item, [1, 2, 2])


def test_not_found_and_unknown_zip(tmp_path):
  with pytest.raises(DataNotFoundError, match="no such file"):
    readers.read_ratings(tmp_path / "nothing")
  with pytest.raises(DataNotFoundError, match="no ratings file") as err:
    readers.read_ratings(tmp_path)
  assert str(tmp_path) in str(err.value)
  zp = make_zip(tmp_path / "stuff.zip", {"a.txt": "x", "b.txt": "y"})
  with pytest.raises(DataFormatError, match="expected a ratings file in the zip") as err:
    readers.read_ratings(zp)
  assert str(zp) in str(err.value)


def test_duplicates_policy_reaches_every_reader(tmp_path):
  path = tmp_path / "ratings.dat"
  path.write_text(RATINGS_DAT + "1::661::4::978302110\n")
  with pytest.raises(DataFormatError) as err:
    readers.read_ratings(path)
  assert err.value.line == 6 and "first at line 2" in str(err.value)
  raw = readers.read_ratings(path, duplicates="keep_last")
  assert len(raw) == 5 and 4.0 in raw.rating
  raw = readers.read_ratings(path, duplicates="mean")
  assert 3.5 in raw.rating


def test_real_shared_files_agree():
  mat = conftest.require_data("jester/dataset1-part3/jester3.mat")
  csv = conftest.require_data("jester/dataset1-part3/ratings.csv.gz")
  a, b = readers.read_ratings(mat).to_ratings(), readers.read_ratings(csv).to_ratings()
  assert a.num_ratings == b.num_ratings == 616_912
  assert (a.to_csr() != b.to_csr()).nnz == 0
  ml = readers.read_ratings(conftest.require_data("movielens-1m")).to_ratings()
  assert (ml.num_ratings, ml.num_users, ml.num_items) == (1_000_209, 6_040, 3_706)
