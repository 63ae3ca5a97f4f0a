"""Tests for autorec_jax.data.netflix and netflix_formats: formats, splits, converter."""

import datetime
import importlib.util
import io
import json
import os
import tarfile

import numpy as np
import pytest

from autorec_jax.data import netflix
from autorec_jax.data import netflix_formats as formats
from autorec_jax.data.errors import DataAccessError, DataFormatError, DataNotFoundError
from tests import conftest

# Split windows written out again here (not taken from the module): (train first,
# train last, test first, test last), ISO dates, inclusive.
WINDOWS = {"full": ("1999-12-01", "2005-11-30", "2005-12-01", "2005-12-31"),
           "3m": ("2005-09-01", "2005-11-30", "2005-12-01", "2005-12-31"),
           "6m": ("2005-06-01", "2005-11-30", "2005-12-01", "2005-12-31"),
           "1y": ("2004-06-01", "2005-05-31", "2005-06-01", "2005-06-30")}

# Three movies: (movie, [(customer, rating, date)]).
MOVIES = [(1, [(1488844, 3, "2005-09-06"), (822109, 5, "2005-05-13"),
               (885013, 4, "2005-10-19")]),
          (2, [(2059652, 4, "2005-09-05"), (1666394, 3, "2005-04-19")]),
          (30, [(1488844, 1, "1999-12-01"), (7, 2, "2005-12-31"),
                (2649429, 5, "2004-06-01")])]


def block_text(movie, rows):
  return f"{movie}:\n" + "".join(f"{c},{r},{d}\n" for c, r, d in rows)


def write_mv_folder(folder, movies=MOVIES):
  os.makedirs(folder, exist_ok=True)
  for movie, rows in movies:
    with open(os.path.join(folder, f"mv_{movie:07d}.txt"), "w") as f:
      f.write(block_text(movie, rows))
  return folder


def write_tar(path, files, extra=()):
  """A tar like the original: a training_set/ folder entry, then its files."""
  with tarfile.open(path, "w") as tar:
    info = tarfile.TarInfo("training_set")
    info.type = tarfile.DIRTYPE
    tar.addfile(info)
    for name, text in list(files) + list(extra):
      data = text.encode()
      info = tarfile.TarInfo(f"training_set/{name}")
      info.size = len(data)
      tar.addfile(info, io.BytesIO(data))
  return path


def mv_files(movies=MOVIES):
  return [(f"mv_{m:07d}.txt", block_text(m, rows)) for m, rows in movies]


def expected_arrays(movies=MOVIES):
  rows = [(m, c, r, formats.date_to_day(d)) for m, rs in movies for c, r, d in rs]
  return [np.array(col) for col in zip(*rows)]


def check_training(data, movies=MOVIES):
  movie, customer, rating, day = expected_arrays(movies)
  np.testing.assert_array_equal(data.movie, movie)
  np.testing.assert_array_equal(data.customer, customer)
  np.testing.assert_array_equal(data.rating, rating)
  np.testing.assert_array_equal(data.day, day)
  assert (data.movie.dtype, data.customer.dtype, data.rating.dtype, data.day.dtype) == (
      np.int32, np.int32, np.int8, np.int32)


def load_synthetic():
  path = conftest.REPO / "experiments" / "netflix_synthetic.py"
  spec = importlib.util.spec_from_file_location("netflix_synthetic", path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


def count_splits(paths):
  """Per split (train ratings, users, items, kept test-window ratings), in plain Python."""
  ratings = []
  for path in paths:
    movie = None
    with open(path) as f:
      for line in f:
        line = line.strip()
        if line.endswith(":"):
          movie = int(line[:-1])
        elif line:
          customer, _, date = line.split(",")
          ratings.append((movie, int(customer), date))
  counts = {}
  for name, (a, b, c, d) in WINDOWS.items():
    train = [r for r in ratings if a <= r[2] <= b]
    users, movies = {r[1] for r in train}, {r[0] for r in train}
    kept = [r for r in ratings if c <= r[2] <= d and r[1] in users and r[0] in movies]
    counts[name] = (len(train), len(users), len(movies), len(kept))
  return counts


def counts_from_stats(stats):
  return {name: (s["train"]["ratings"], s["train"]["users"], s["train"]["items"],
                 s["valid"]["ratings"] + s["test"]["ratings"]) for name, s in stats.items()}


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):
  """~200K synthetic ratings as mv_ files, converted with seed 0."""
  root = tmp_path_factory.mktemp("synthetic")
  folder, n = load_synthetic().write_tree(root / "tree", 200_000, num_movies=1000,
                                          num_customers=6000, seed=3)
  stats = netflix.convert(folder, root / "out", seed=0)
  return folder, n, root / "out", stats


# ----------------------------------------------------------------------------------------
# Formats.


def test_reads_mv_folder(tmp_path):
  data = formats.read_training_set(write_mv_folder(tmp_path / "training_set"))
  check_training(data)
  assert len(data) == 8


def test_reads_folder_holding_training_set(tmp_path):
  write_mv_folder(tmp_path / "training_set")
  check_training(formats.read_training_set(tmp_path))


def test_reads_tar_as_a_stream_without_unpacking(tmp_path):
  tar = write_tar(tmp_path / "training_set.tar", mv_files(),
                  extra=[("README", "not ratings\n")])
  before = sorted(os.listdir(tmp_path))
  check_training(formats.read_training_set(tar))
  check_training(formats.read_training_set(tmp_path))  # the folder holding the tar
  assert sorted(os.listdir(tmp_path)) == before


def test_reads_combined_files_with_several_blocks(tmp_path):
  text = "".join(block_text(m, rows) for m, rows in MOVIES)
  (tmp_path / "combined_data_1.txt").write_text(text)
  check_training(formats.read_training_set(tmp_path / "combined_data_1.txt"))
  # Tiny batches cut the file between blocks many times; same result.
  check_training(formats.read_training_set(tmp_path / "combined_data_1.txt",
                                           batch_bytes=20))


def test_reads_folder_of_combined_files_in_numeric_order(tmp_path):
  for k, (movie, rows) in zip((10, 2, 1), reversed(MOVIES)):
    (tmp_path / f"combined_data_{k}.txt").write_text(block_text(movie, rows))
  check_training(formats.read_training_set(tmp_path))


def test_movies_out_of_order_are_sorted_by_movie(tmp_path):
  text = "".join(block_text(m, rows) for m, rows in reversed(MOVIES))
  (tmp_path / "combined_data_1.txt").write_text(text)
  check_training(formats.read_training_set(tmp_path / "combined_data_1.txt",
                                           batch_bytes=30))


def test_crlf_lines_and_missing_final_newline(tmp_path):
  folder = write_mv_folder(tmp_path)
  path = os.path.join(folder, "mv_0000002.txt")
  with open(path, "rb") as f:
    data = f.read()
  with open(path, "wb") as f:
    f.write(data.replace(b"\n", b"\r\n").rstrip(b"\r\n"))
  check_training(formats.read_training_set(folder))


def test_two_workers_give_the_same_arrays(tmp_path):
  folder = write_mv_folder(tmp_path / "ts")
  check_training(formats.read_training_set(folder, workers=2, batch_bytes=10))


def test_worker_errors_name_file_and_line(tmp_path):
  folder = write_mv_folder(tmp_path / "ts")
  (tmp_path / "ts" / "mv_0000002.txt").write_text("2:\n5,3,2005-09-06\n6,9,2005-09-06\n")
  with pytest.raises(DataFormatError) as e:
    formats.read_training_set(folder, workers=2, batch_bytes=10)
  assert e.value.path.endswith("mv_0000002.txt") and e.value.line == 3


BAD_LINES = [
    ("10,3,2005-13-01", "date"),
    ("10,3,2005-02-30", "date"),
    ("10,3,2005/09/06", "date"),
    ("10,3,05-09-06", "date YYYY-MM-DD"),
    ("10,3.5,2005-09-06", "integer rating"),
    ("10,x,2005-09-06", "integer rating"),
    ("10,6,2005-09-06", "rating 1-5"),
    ("10,0,2005-09-06", "rating 1-5"),
    ("1x0,3,2005-09-06", "integer CustomerID"),
    ("99999999999,3,2005-09-06", "below 2**31"),
    ("10,3,2005-09-06,7", "CustomerID,Rating,YYYY-MM-DD"),
]


@pytest.mark.parametrize("line,words", BAD_LINES)
def test_bad_rating_line_names_file_and_line(tmp_path, line, words):
  folder = write_mv_folder(tmp_path)
  (tmp_path / "mv_0000002.txt").write_text(f"2:\n5,3,2005-09-06\n{line}\n")
  with pytest.raises(DataFormatError) as e:
    formats.read_training_set(folder)
  assert e.value.path == str(tmp_path / "mv_0000002.txt")
  assert e.value.line == 3
  assert words in e.value.reason and str(e.value).startswith(f"{e.value.path}:3: ")


def test_block_without_movie_line(tmp_path):
  write_mv_folder(tmp_path / "a")
  (tmp_path / "a" / "mv_0000002.txt").write_text("5,3,2005-09-06\n")
  with pytest.raises(DataFormatError, match="MovieID") as e:
    formats.read_training_set(tmp_path / "a")
  assert e.value.path.endswith("mv_0000002.txt") and e.value.line == 1
  (tmp_path / "combined_data_1.txt").write_text("5,3,2005-09-06\n1:\n6,3,2005-09-06\n")
  with pytest.raises(DataFormatError, match="MovieID") as e:
    formats.read_training_set(tmp_path / "combined_data_1.txt")
  assert e.value.line == 1


def test_bad_lines_in_combined_file_count_lines_across_cuts(tmp_path):
  text = "".join(block_text(m, rows) for m, rows in MOVIES) + "31:\n5,7,2005-01-01\n"
  path = tmp_path / "combined_data_1.txt"
  path.write_text(text)
  with pytest.raises(DataFormatError, match="rating 1-5") as e:
    formats.read_training_set(path, batch_bytes=25)
  assert e.value.line == len(text.splitlines())


@pytest.mark.parametrize("text,words", [
    ("3:\n5,3,2005-09-06\n", "number in the file name"),
    ("2:\n5,3,2005-09-06\n3:\n6,3,2005-09-06\n", "one `MovieID:` line"),
    ("x2:\n5,3,2005-09-06\n", "integer MovieID"),
    ("", "empty file"),
])
def test_bad_mv_file_structure(tmp_path, text, words):
  write_mv_folder(tmp_path)
  (tmp_path / "mv_0000002.txt").write_text(text)
  with pytest.raises(DataFormatError, match=words) as e:
    formats.read_training_set(tmp_path)
  assert e.value.path.endswith("mv_0000002.txt")


def test_repeated_customer_and_repeated_movie(tmp_path):
  write_mv_folder(tmp_path)
  (tmp_path / "mv_0000002.txt").write_text("2:\n5,3,2005-09-06\n6,3,2005-09-06\n"
                                           "5,4,2005-09-07\n")
  with pytest.raises(DataFormatError, match="once per movie.*first at line 2") as e:
    formats.read_training_set(tmp_path)
  assert e.value.line == 4
  path = tmp_path / "combined_data_1.txt"
  path.write_text("1:\n5,3,2005-09-06\n2:\n5,3,2005-09-06\n1:\n6,3,2005-09-06\n")
  with pytest.raises(DataFormatError, match="movie 1 again") as e:
    formats.read_training_set(path)
  assert e.value.line == 5


def test_truncated_tar(tmp_path):
  tar = write_tar(tmp_path / "training_set.tar", mv_files())
  data = tar.read_bytes()
  with tarfile.open(tar) as t:
    members = t.getmembers()
  last = members[-1]
  for cut in (members[2].offset_data + 7, members[2].offset,
              last.offset_data + -(-last.size // 512) * 512 + 100):
    bad = tmp_path / "cut.tar"
    bad.write_bytes(data[:cut])
    with pytest.raises(DataFormatError, match="truncated") as e:
      formats.read_training_set(bad)
    assert e.value.path == str(bad) and "training_set/mv_" in e.value.reason


def test_missing_input(tmp_path):
  with pytest.raises(DataNotFoundError):
    formats.read_training_set(tmp_path / "nope")
  with pytest.raises(DataNotFoundError, match="mv_NNNNNNN"):
    formats.read_training_set(tmp_path)


def test_movie_titles_iso_8859_1_null_year_and_commas(tmp_path):
  path = tmp_path / "movie_titles.txt"
  path.write_bytes("1,2003,Dinosaur Planet\n2,NULL,Isle of Man TT 2004 Review\n"
                   "3,1997,Character, The Sequel, Part 2\n6483,1993,Smokey Joe's Café\n"
                   .encode("iso-8859-1"))
  titles = formats.read_movie_titles(path)
  np.testing.assert_array_equal(titles.movie, [1, 2, 3, 6483])
  np.testing.assert_array_equal(titles.year, [2003, 0, 1997, 1993])
  assert titles.title == ("Dinosaur Planet", "Isle of Man TT 2004 Review",
                          "Character, The Sequel, Part 2", "Smokey Joe's Café")


@pytest.mark.parametrize("line,words", [("7,19x9,Title", "YearOfRelease"),
                                        ("x,1999,Title", "MovieID"),
                                        ("7,1999", "MovieID,YearOfRelease,Title")])
def test_movie_titles_bad_line(tmp_path, line, words):
  path = tmp_path / "movie_titles.txt"
  path.write_text(f"1,2003,Dinosaur Planet\n{line}\n")
  with pytest.raises(DataFormatError, match=words) as e:
    formats.read_movie_titles(path)
  assert e.value.line == 2


def test_real_movie_titles():
  path = conftest.require_data("netflix-prize/movie_titles.txt")
  titles = formats.read_movie_titles(path)
  assert len(titles.title) == 17770 and np.sum(titles.year == 0) == 7
  np.testing.assert_array_equal(titles.movie, np.arange(1, 17771))
  assert titles.title[6482] == "Smokey Joe's Café"


def test_probe(tmp_path):
  path = tmp_path / "probe.txt"
  path.write_text("1:\n30878\n2647871\n10:\n1952305\n")
  probe = formats.read_probe(path)
  np.testing.assert_array_equal(probe.movie, [1, 1, 10])
  np.testing.assert_array_equal(probe.customer, [30878, 2647871, 1952305])
  assert probe.day is None and probe.value is None
  path.write_text("1:\n30878\n3,2005-01-01\n")
  with pytest.raises(DataFormatError, match="CustomerID") as e:
    formats.read_probe(path)
  assert e.value.line == 3


def test_qualifying_and_prediction_round_trip(tmp_path):
  path = tmp_path / "qualifying.txt"
  path.write_text("1:\n1046323,2005-12-19\n1080030,2005-12-23\n7:\n10:\n"
                  "1952305,2004-02-29\n")
  q = formats.read_qualifying(path)
  np.testing.assert_array_equal(q.movie, [1, 1, 10])
  np.testing.assert_array_equal(q.customer, [1046323, 1080030, 1952305])
  np.testing.assert_array_equal(q.day, [formats.date_to_day(d) for d in
                                        ("2005-12-19", "2005-12-23", "2004-02-29")])
  np.testing.assert_array_equal(q.block_movie, [1, 7, 10])
  out = tmp_path / "predictions.txt"
  formats.write_predictions(out, q, [3.4, 7.0, 1.23456])
  assert out.read_text() == "1:\n3.400\n5.000\n7:\n10:\n1.235\n"
  back = formats.read_predictions(out)
  np.testing.assert_array_equal(back.block_movie, q.block_movie)
  np.testing.assert_array_equal(back.block_start, q.block_start)
  np.testing.assert_allclose(back.value, [3.4, 5.0, 1.235])
  formats.write_predictions(out, q, lambda movie, customer: movie + customer % 2 * 0.5,
                            decimals=1, clip=None)
  np.testing.assert_allclose(formats.read_predictions(out).value, [1.5, 1.0, 10.5])
  with pytest.raises(ValueError, match="expected 3 predictions"):
    formats.write_predictions(out, q, [1.0])
  with pytest.raises(ValueError, match="finite"):
    formats.write_predictions(out, q, [1.0, np.nan, 2.0])


@pytest.mark.parametrize("line,words", [("1046323,2005-02-29", "CustomerID,YYYY-MM-DD"),
                                        ("1046323", "CustomerID,YYYY-MM-DD")])
def test_qualifying_bad_line(tmp_path, line, words):
  path = tmp_path / "qualifying.txt"
  path.write_text(f"1:\n1,2005-12-19\n{line}\n")
  with pytest.raises(DataFormatError, match=words) as e:
    formats.read_qualifying(path)
  assert e.value.line == 3


def test_dates_match_python_over_leap_years_and_out_of_table_years():
  days = np.arange(formats.date_to_day("1796-01-01"), formats.date_to_day("2260-12-31"), 3)
  text = "".join(formats.day_to_date(d) for d in days) + "1900-02-292100-02-291800-02-29"
  got, ok = formats._dates(np.frombuffer(text.encode(), np.uint8).reshape(-1, 10))
  np.testing.assert_array_equal(got[:len(days)], days)
  assert ok[:len(days)].all() and not ok[len(days):].any()


# ----------------------------------------------------------------------------------------
# Splits.


def ratings_on(dates, movie=1, customer=1):
  n = len(dates)
  return formats.TrainingRatings(
      movie=np.full(n, movie, np.int32), customer=np.arange(customer, customer + n,
                                                            dtype=np.int32),
      rating=np.full(n, 3, np.int8),
      day=np.array([formats.date_to_day(d) for d in dates], np.int32))


def concat(*parts):
  return formats.TrainingRatings(*(np.concatenate([getattr(p, k) for p in parts])
                                   for k in ("movie", "customer", "rating", "day")))


@pytest.mark.parametrize("name", list(WINDOWS))
def test_windows_are_inclusive_at_both_ends(name):
  a, b, c, d = WINDOWS[name]
  shift = lambda s, k: (datetime.date.fromisoformat(s) + datetime.timedelta(k)).isoformat()
  rows = [  # (movie, customer, date)
      (1, 1, shift(a, -1)), (1, 2, a), (1, 3, b), (2, 4, a), (2, 5, a), (2, 6, b),
      (2, 2, c), (2, 3, d), (1, 4, shift(d, 1))]  # c - 1 is b: train ends as test starts
  movie, customer, date = zip(*rows)
  data = formats.TrainingRatings(
      movie=np.array(movie, np.int32), customer=np.array(customer, np.int32),
      rating=np.full(len(rows), 3, np.int8),
      day=np.array([formats.date_to_day(x) for x in date], np.int32))
  ratings, part = netflix.split_ratings(data, name, seed=0)
  in_train = [a <= x <= b for x in date]
  assert np.sum(part == 0) == sum(in_train) == 5  # a and b included, a - 1 not
  assert np.sum(part > 0) == 2  # c and d; not d + 1
  assert sorted(ratings.timestamp[part > 0] // 86400) == [formats.date_to_day(c),
                                                          formats.date_to_day(d)]
  np.testing.assert_array_equal(ratings.user_ids, [2, 3, 4, 5, 6])


def test_test_window_ratings_of_unseen_users_or_movies_are_dropped():
  day = lambda s: formats.date_to_day(s)
  data = formats.TrainingRatings(
      movie=np.array([1, 2, 1, 3, 2], np.int32),
      customer=np.array([10, 20, 20, 10, 30], np.int32),
      rating=np.array([1, 2, 3, 4, 5], np.int8),
      day=np.array([day("2005-10-01"), day("2005-10-02"), day("2005-12-05"),
                    day("2005-12-06"), day("2005-12-07")], np.int32))
  ratings, part = netflix.split_ratings(data, "3m", seed=1)
  # Kept: customer 20 on movie 1 (both seen). Dropped: movie 3, customer 30.
  assert len(part) == 3 and list(part[:2]) == [0, 0] and part[2] in (1, 2)
  np.testing.assert_array_equal(ratings.user_ids, [10, 20])
  np.testing.assert_array_equal(ratings.item_ids, [1, 2])
  np.testing.assert_array_equal(ratings.user, [0, 1, 1])
  np.testing.assert_array_equal(ratings.item, [0, 1, 0])
  np.testing.assert_array_equal(ratings.rating, [1.0, 2.0, 3.0])
  assert ratings.rating.dtype == np.float32 and ratings.timestamp.dtype == np.int64


def test_unknown_split():
  with pytest.raises(ValueError, match="unknown Netflix split"):
    netflix.split_ratings(ratings_on(["2005-01-01"]), "2y")


# ----------------------------------------------------------------------------------------
# Converter.


def test_counts_equal_an_independent_count(synthetic):
  folder, n, out, stats = synthetic
  paths = sorted(os.path.join(folder, f) for f in os.listdir(folder))
  assert counts_from_stats(stats) == count_splits(paths)
  assert json.loads((out / "stats.json").read_text()) == stats
  assert len(formats.read_training_set(folder)) == n


def test_stats_json_shape_and_split_contents(synthetic):
  _, _, out, stats = synthetic
  assert list(stats) == ["full", "3m", "6m", "1y"]
  for name, s in stats.items():
    assert list(s) == ["train", "valid", "test"]
    assert all(list(part) == ["users", "items", "ratings"] for part in s.values())
    ratings, part = netflix.load_converted(out / name)
    assert [int(np.sum(part == k)) for k in range(3)] == [
        s[p]["ratings"] for p in ("train", "valid", "test")]
    train = part == 0
    assert ratings.num_users == s["train"]["users"] == len(np.unique(ratings.user[train]))
    assert ratings.num_items == s["train"]["items"] == len(np.unique(ratings.item[train]))
    assert len(np.unique(ratings.user[part == 1])) == s["valid"]["users"]
    assert np.all(np.diff(ratings.user_ids) > 0) and np.all(np.diff(ratings.item_ids) > 0)
    a, b, c, d = (formats.date_to_day(x) * 86400 for x in WINDOWS[name])
    assert a <= ratings.timestamp[train].min() and ratings.timestamp[train].max() <= b
    assert c <= ratings.timestamp[~train].min() and ratings.timestamp[~train].max() <= d
    assert set(np.unique(ratings.rating)) <= {1.0, 2.0, 3.0, 4.0, 5.0}
  assert "seed: 0" in (out / "README.txt").read_text()


def test_valid_and_test_halves_are_within_one_percent(synthetic):
  stats = synthetic[3]
  valid = sum(s["valid"]["ratings"] for s in stats.values())
  test = sum(s["test"]["ratings"] for s in stats.values())
  assert valid + test > 20_000
  assert abs(valid / (valid + test) - 0.5) < 0.01
  for s in stats.values():
    assert abs(s["valid"]["ratings"] / (s["valid"]["ratings"] + s["test"]["ratings"]) -
               0.5) < 0.03


def test_same_seed_identical_files_other_seed_other_halves(synthetic, tmp_path):
  folder, _, out, _ = synthetic
  netflix.convert(folder, tmp_path / "again", seed=0, splits=["3m", "1y"])
  for name in ("3m", "1y"):
    assert (tmp_path / "again" / name / "ratings.npz").read_bytes() == (
        out / name / "ratings.npz").read_bytes()
  netflix.convert(folder, tmp_path / "other", seed=1, splits=["3m"])
  a, part_a = netflix.load_converted(out / "3m")
  b, part_b = netflix.load_converted(tmp_path / "other" / "3m")
  np.testing.assert_array_equal(part_a == 0, part_b == 0)
  np.testing.assert_array_equal(a.user, b.user)
  assert np.mean(part_a[part_a > 0] != part_b[part_b > 0]) > 0.3


def test_tar_and_combined_inputs_give_identical_files(tmp_path):
  synthetic_module = load_synthetic()
  outputs = []
  for fmt in ("dir", "tar", "combined"):
    path, _ = synthetic_module.write_tree(tmp_path / fmt, 5000, num_movies=40,
                                          num_customers=300, seed=5, fmt=fmt)
    netflix.convert(path, tmp_path / f"out_{fmt}", seed=2, splits=["full"])
    outputs.append((tmp_path / f"out_{fmt}" / "full" / "ratings.npz").read_bytes())
  assert outputs[0] == outputs[1] == outputs[2]


def test_output_refused_replaced_and_atomic(tmp_path):
  folder = write_mv_folder(tmp_path / "in")
  out = tmp_path / "out"
  out.mkdir()
  (out / "keep.txt").write_text("old")
  with pytest.raises(FileExistsError, match="--overwrite"):
    netflix.convert(folder, out)
  # A failed conversion leaves the old output and no temporary folder behind.
  (tmp_path / "in" / "mv_0000002.txt").write_text("2:\n5,3,2005-9-06\n")
  with pytest.raises(DataFormatError):
    netflix.convert(folder, out, overwrite=True)
  assert sorted(os.listdir(tmp_path)) == ["in", "out"] and (out / "keep.txt").exists()
  write_mv_folder(tmp_path / "in")
  netflix.convert(folder, out, overwrite=True, splits=["full"])
  assert sorted(os.listdir(out)) == ["README.txt", "full", "stats.json"]
  assert sorted(os.listdir(tmp_path)) == ["in", "out"]
  with pytest.raises(ValueError, match="inside the output"):
    netflix.convert(folder, tmp_path, overwrite=True)


def test_load_converted_errors(tmp_path):
  with pytest.raises(DataNotFoundError, match="ratings.npz"):
    netflix.load_converted(tmp_path)
  folder = write_mv_folder(tmp_path / "in")
  netflix.convert(folder, tmp_path / "out", splits=["full"])
  npz = tmp_path / "out" / "full" / "ratings.npz"
  ratings, part = netflix.load_converted(npz.parent)
  assert ratings.source == str(npz) and part.dtype == np.int8
  data = npz.read_bytes()
  npz.write_bytes(data[:len(data) // 2])
  with pytest.raises(DataFormatError, match="truncated or corrupt") as e:
    netflix.load_converted(npz.parent)
  assert e.value.path == str(npz)
  np.savez(npz, user=np.zeros(1, np.int32))
  with pytest.raises(DataFormatError, match="missing item"):
    netflix.load_converted(npz.parent)
  arrays = {k: np.zeros(1, t) for k, t in netflix.NPZ_ARRAYS.items()}
  arrays["user"] = np.zeros(1, np.int64)
  np.savez(npz, **arrays)
  with pytest.raises(DataFormatError, match="user as 1-D int32"):
    netflix.load_converted(npz.parent)
  arrays["user"] = np.array([3], np.int32)
  np.savez(npz, **arrays)
  with pytest.raises(DataFormatError, match="user indices"):
    netflix.load_converted(npz.parent)


def test_cli(tmp_path, capsys):
  folder = write_mv_folder(tmp_path / "in")
  assert netflix.main([f"--input={folder}", f"--output={tmp_path / 'out'}", "--seed=4",
                       "--splits=1y,full", "--quiet"]) == 0
  stats = json.loads(capsys.readouterr().out)
  assert list(stats) == ["full", "1y"] and stats["full"]["train"]["ratings"] == 7
  assert "seed: 4" in (tmp_path / "out" / "README.txt").read_text()
  assert netflix.main([f"--input={folder}", f"--output={tmp_path / 'out'}"]) == 1
  assert "--overwrite" in capsys.readouterr().err
  with pytest.raises(SystemExit) as e:
    netflix.main(["--help"])
  assert e.value.code == 0
  text = capsys.readouterr().out
  for flag in ("--input", "--output", "--seed", "--splits", "--overwrite", "--workers"):
    assert flag in text


# ----------------------------------------------------------------------------------------
# Real data: 10 original mv_ files.


def test_real_training_files_counts():
  folder = conftest.require_data("netflix-prize/training_set")
  paths = sorted(str(p) for p in folder.glob("mv_*.txt"))
  data = formats.read_training_set(folder)
  assert len(paths) == 10 and len(data) == 20352
  assert len(np.unique(data.customer)) == 19519
  assert data.customer[0] == 1488844 and formats.day_to_date(data.day[0]) == "2005-09-06"
  expected = count_splits(paths)
  for name in WINDOWS:
    ratings, part = netflix.split_ratings(data, name, seed=0)
    got = (int(np.sum(part == 0)), ratings.num_users, ratings.num_items,
           int(np.sum(part > 0)))
    assert got == expected[name], name


def test_real_training_files_convert(tmp_path):
  folder = conftest.require_data("netflix-prize/training_set")
  stats = netflix.convert(folder, tmp_path / "out")
  assert counts_from_stats(stats) == count_splits(sorted(folder.glob("mv_*.txt")))


def test_large_ids_use_the_sorted_id_path():
  day = formats.date_to_day
  data = formats.TrainingRatings(
      movie=np.array([5, 5, 2_000_000_000, 5], np.int32),
      customer=np.array([2_100_000_000, 3, 3, 77], np.int32),
      rating=np.array([1, 2, 3, 4], np.int8),
      day=np.array([day("2005-10-01"), day("2005-10-02"), day("2005-10-03"),
                    day("2005-12-03")], np.int32))
  ratings, part = netflix.split_ratings(data, "3m")
  np.testing.assert_array_equal(ratings.user_ids, [3, 2_100_000_000])
  np.testing.assert_array_equal(ratings.item_ids, [5, 2_000_000_000])
  np.testing.assert_array_equal(ratings.user, [1, 0, 0])
  np.testing.assert_array_equal(ratings.item, [0, 0, 1])
  np.testing.assert_array_equal(part, [0, 0, 0])  # customer 77 is unseen: dropped


@pytest.mark.parametrize("read", [formats.read_training_set, formats.read_probe,
                                  formats.read_qualifying, formats.read_predictions,
                                  formats.read_movie_titles])
def test_a_named_pipe_is_refused_at_once(tmp_path, read):
  fifo = tmp_path / "combined_data_1.txt"
  os.mkfifo(fifo)
  with pytest.raises(DataAccessError, match="got a named pipe \\(FIFO\\)") as err:
    read(fifo)
  assert str(err.value).startswith(f"{fifo}: expected a ")


def test_special_entries_in_a_training_folder(tmp_path):
  folder = tmp_path / "training_set"
  write_mv_folder(folder)
  os.symlink(folder / "mv_0000099.txt", folder / "mv_0000098.txt")
  os.symlink(folder / "mv_0000098.txt", folder / "mv_0000099.txt")
  with pytest.raises(DataAccessError) as err:
    formats.read_training_set(folder)
  assert str(err.value).startswith(f"{folder / 'mv_0000098.txt'}: expected a file, got a "
                                   "symbolic link loop")
  for name in ("mv_0000098.txt", "mv_0000099.txt"):
    os.remove(folder / name)
  os.mkdir(folder / "mv_0000005.txt")
  with pytest.raises(DataAccessError, match="mv_0000005.txt: expected a file, got a folder"):
    formats.read_training_set(folder)


def test_a_movie_id_of_5000_digits_in_the_titles(tmp_path):
  path = tmp_path / "movie_titles.txt"
  path.write_text("9" * 5000 + ",2003,X\n")
  with pytest.raises(DataFormatError) as err:
    formats.read_movie_titles(path)
  assert str(err.value) == f"{path}:1: expected an integer MovieID, got {'9' * 40!r}"


def test_a_converted_split_that_is_a_named_pipe(tmp_path):
  (tmp_path / "full").mkdir()
  os.mkfifo(tmp_path / "full" / "ratings.npz")
  with pytest.raises(DataAccessError, match="ratings.npz: expected a file, got a named"):
    netflix.load_converted(tmp_path / "full")
