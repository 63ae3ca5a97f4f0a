"""Tests for autorec_jax.data.readers: official formats and format sniffing."""

import errno
import gzip
import io
import os
import signal
import zipfile

import numpy as np
import pytest
import scipy.io

from autorec_jax.data import errors, readers, text
from autorec_jax.data.errors import DataAccessError, DataFormatError, DataNotFoundError
from tests import conftest
from tests.data.jester_test import install_fake_xlrd, jester_matrix, xls_bytes

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


# ----------------------------------------------------------------------------------------
# Archives with several or no ratings files; special files and unreadable paths.


def test_a_zip_holding_two_ratings_files_is_refused_naming_both(tmp_path):
  zp = make_zip(tmp_path / "mix.zip", {"a/ratings.csv": RATINGS_CSV,
                                       "b/ratings.csv": RATINGS_CSV.replace("5.0", "1.0"),
                                       "README.txt": "x"})
  with pytest.raises(DataFormatError) as err:
    readers.read_ratings(zp)
  assert str(err.value) == (
      f"{zp}: expected one ratings file in the zip, got 2: a/ratings.csv, b/ratings.csv; "
      "unzip the one to read and pass it as the data path (--config.data.path=FILE)")
  other = make_zip(tmp_path / "two_kinds.zip", {"ml-1m/ratings.dat": RATINGS_DAT,
                                                "copy/u.data": U_DATA})
  with pytest.raises(DataFormatError, match="got 2: ml-1m/ratings.dat, copy/u.data"):
    readers.read_ratings(other)
  check(readers.read_ratings(other, member="copy/u.data"))


def test_an_empty_zip_says_it_holds_no_files(tmp_path):
  for members in ({}, {"folder/": ""}):
    zp = make_zip(tmp_path / "empty.zip", members)
    with pytest.raises(DataFormatError) as err:
      readers.read_ratings(zp)
    assert str(err.value) == (f"{zp}: expected a ratings file in the zip, got an archive "
                              "that holds no files")


def test_the_jester_parts_of_one_zip_are_all_read(tmp_path, monkeypatch):
  install_fake_xlrd(monkeypatch)
  x1, x2 = jester_matrix(2, seed=1), jester_matrix(3, seed=2)
  zp = make_zip(tmp_path / "jester.zip", {"jester-data-2.xls": xls_bytes(x2),
                                          "jester-data-1.xls": xls_bytes(x1)})
  raw = readers.read_ratings(zp)
  assert sorted(set(raw.user.tolist())) == [1, 2, 3, 4, 5]  # part 2 numbered after part 1
  assert raw.paths == (f"{zp}:jester-data-1.xls", f"{zp}:jester-data-2.xls")
  assert len(raw) == int(np.sum(x1[:, 1:] != 99) + np.sum(x2[:, 1:] != 99))


def test_a_folder_with_two_files_of_one_name_is_refused(tmp_path):
  (tmp_path / "ratings.dat").write_text(RATINGS_DAT)
  (tmp_path / "ratings.dat.gz").write_bytes(gzip.compress(b"9::9::1::0\n"))
  with pytest.raises(DataFormatError) as err:
    readers.read_ratings(tmp_path)
  assert str(err.value).startswith(f"{tmp_path}: expected one ratings file in the folder, "
                                   "got ratings.dat, ratings.dat.gz; pass the one to read")


@pytest.fixture
def no_hang():
  """Fails a test that blocks (on a named pipe) instead of letting it hang."""
  def timeout(signum, frame):
    raise AssertionError("the reader blocked")
  previous = signal.signal(signal.SIGALRM, timeout)
  signal.alarm(20)
  yield
  signal.alarm(0)
  signal.signal(signal.SIGALRM, previous)


def test_a_named_pipe_is_refused_without_blocking(tmp_path, no_hang):
  fifo = tmp_path / "ratings.csv"
  os.mkfifo(fifo)
  with pytest.raises(DataAccessError) as err:
    readers.read_ratings(fifo)
  assert str(err.value) == f"{fifo}: expected a file or folder, got a named pipe (FIFO)"
  with pytest.raises(DataAccessError, match="got a named pipe"):
    readers.read_ratings(tmp_path)  # found in the folder, then refused: not skipped
  with pytest.raises(DataAccessError, match="got a named pipe"):
    text.read_delimited(fifo)


def test_a_named_pipe_swapped_in_after_the_check_does_not_block(tmp_path, monkeypatch,
                                                                no_hang):
  fifo = tmp_path / "r.csv"
  os.mkfifo(fifo)
  monkeypatch.setattr(errors, "check_file", lambda path, what="file": None)
  with pytest.raises(DataAccessError, match="expected a file, got a named pipe"):
    errors.read_file(fifo)


def test_a_symbolic_link_loop_and_a_dangling_link(tmp_path):
  os.symlink(tmp_path / "b.csv", tmp_path / "a.csv")
  os.symlink(tmp_path / "a.csv", tmp_path / "b.csv")
  with pytest.raises(DataAccessError) as err:
    readers.read_ratings(tmp_path / "a.csv")
  assert str(err.value).startswith(f"{tmp_path / 'a.csv'}: expected a file or folder, got "
                                   "a symbolic link loop")
  os.symlink(tmp_path / "gone.csv", tmp_path / "dangling.csv")
  with pytest.raises(DataNotFoundError) as err:
    readers.read_ratings(tmp_path / "dangling.csv")
  assert str(err.value) == (f"{tmp_path / 'dangling.csv'}: no such file or folder: it is a "
                            f"symbolic link to {tmp_path / 'gone.csv'}, which does not exist")


def test_a_folder_where_a_file_is_expected(tmp_path):
  (tmp_path / "u.data").mkdir()
  with pytest.raises(DataAccessError) as err:
    readers.read_movielens_100k(tmp_path / "u.data")
  assert str(err.value) == f"{tmp_path / 'u.data'}: expected a file, got a folder"


def test_permission_denied_names_the_cause(tmp_path, monkeypatch):
  # Tests run as root, where chmod 000 does not stop reads: refuse the open instead.
  path = tmp_path / "ratings.dat"
  path.write_text(RATINGS_DAT)
  real_open = os.open

  def refuse(p, *args, **kwargs):
    if os.fspath(p) == str(path):
      raise PermissionError(errno.EACCES, "Permission denied", str(p))
    return real_open(p, *args, **kwargs)
  monkeypatch.setattr(os, "open", refuse)
  with pytest.raises(DataAccessError) as err:
    readers.read_ratings(path)
  assert str(err.value).startswith(f"{path}: expected a readable file, got permission "
                                   "denied (EACCES)")

  def unlistable(p):
    raise PermissionError(errno.EACCES, "Permission denied", str(p))
  monkeypatch.setattr(os, "listdir", unlistable)
  with pytest.raises(DataAccessError, match="expected a readable folder, got permission"):
    readers.read_ratings(tmp_path)


def test_a_read_error_names_the_file(tmp_path, monkeypatch):
  path = tmp_path / "r.csv"
  path.write_text("1,2,3\n")

  class Failing(io.BufferedReader):
    def read(self, size=-1):
      raise OSError(errno.EIO, "Input/output error")
  real = errors.open_file
  monkeypatch.setattr(errors, "open_file", lambda p, what="file": Failing(real(p, what)))
  with pytest.raises(DataAccessError) as err:
    text.read_delimited(path)
  assert str(err.value) == (f"{path}: expected a readable file, got an error from the "
                            "system: Input/output error (EIO)")
