"""Input validation of every reader, proven on a corpus of bad files.

Each case reads one bad input the way a user would (a reader, `datasets.load` with a
data config, the config checks) and asserts the exact error class, that the message
starts with `FILE:LINE: ` (or `FILE: ` when the fault is the whole file) and says what
was expected. The end-to-end checks run `python -m autorec_jax.main` on a few of them:
a non-zero exit and one `error: ...` line on stderr, never a traceback.

Corpus files are tiny and synthetic, written by `tests/bad_inputs/make_corpus.py`
into a temporary folder when this module is imported (no data files are committed).
"""

from __future__ import annotations

import atexit
import dataclasses
import errno
import importlib.util
import math
import os
import pathlib
import shutil
import signal
import subprocess
import sys
import tempfile
import types
import warnings
from typing import Any, Callable

import pytest

from autorec_jax.artifacts import run_config
from autorec_jax.config import checks as config_checks
from autorec_jax.config import schema as config_schema
from autorec_jax.data import datasets, jester, netflix_formats, readers, titles
from autorec_jax.data.datasets import DataConfigError
from autorec_jax.data.errors import DataAccessError, DataFormatError, DataNotFoundError
from autorec_jax.runtime import parallel
from autorec_jax.runtime import resources
from autorec_jax.runtime import signals
from autorec_jax.training import metrics
from autorec_jax.training import workdir as workdir_lib
from configs import movielens_1m
from tests import conftest

def _load_make_corpus():
  spec = importlib.util.spec_from_file_location(
      "make_corpus", pathlib.Path(__file__).resolve().parent / "bad_inputs" / "make_corpus.py")
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


make_corpus = _load_make_corpus()
CORPUS = pathlib.Path(tempfile.mkdtemp(prefix="autorec_bad_inputs_"))
atexit.register(shutil.rmtree, CORPUS, ignore_errors=True)
make_corpus.build(CORPUS)
make_corpus.build_special(CORPUS)


def bad(rel: str) -> str:
  return str(CORPUS / rel)


def data_cfg(**overrides):
  """A data config as the command line builds it (schema defaults plus overrides)."""
  cfg = config_schema.base_config().data
  cfg.download = False
  for key, value in overrides.items():
    setattr(cfg, key, value)
  return cfg


def load_csv(rel: str, **overrides):
  return datasets.load(data_cfg(name="csv", path=bad(rel), **overrides))


@dataclasses.dataclass(frozen=True)
class Case:
  """One bad input.

  Attributes:
    id: the test id.
    read: reads the input, given a context with `tmp_path` and `monkeypatch`.
    error: the exact class expected.
    file: the file the message must start with (relative to the corpus, or absolute),
      or None when no file is at fault (a config value).
    line: the 1-based line the message names (`FILE:LINE: `), or None (`FILE: `).
    says: a fragment of the message that tells what was expected or what to do.
  """

  id: str
  read: Callable[[Any], Any]
  error: type
  file: str | None
  line: int | None
  says: str


def _missing_dataset(ctx):
  """No data.path, nothing under $AUTOREC_DATA_DIR or the cache, downloads off."""
  empty = ctx.tmp_path / "data"
  empty.mkdir()
  ctx.monkeypatch.setenv("AUTOREC_DATA_DIR", str(empty))
  ctx.monkeypatch.setenv("HOME", str(ctx.tmp_path / "home"))
  try:
    return datasets.load(data_cfg(name="movielens_1m"))
  except DataNotFoundError as e:
    assert str(e).endswith(", or set data.download=True to fetch it")
    assert f"under {empty}, " in str(e)
    raise


def _permission_denied(ctx):
  """An unreadable file. Tests run as root, where chmod 000 does not stop reads, so the
  open itself is refused as the system would refuse it."""
  real_open, target = os.open, bad("valid.csv")

  def refuse(path, *args, **kwargs):
    if os.fspath(path) == target:
      raise PermissionError(errno.EACCES, "Permission denied", target)
    return real_open(path, *args, **kwargs)
  ctx.monkeypatch.setattr(os, "open", refuse)
  return load_csv("valid.csv")


def _cli_config(**overrides):
  cfg = movielens_1m.get_config("tiny")
  for dotted, value in overrides.items():
    group, field = dotted.split(".")
    setattr(cfg[group], field, value)
  return cfg


CASES = [
    # Delimited text: delimiters, fields, values.
    Case("wrong_delimiter", lambda c: load_csv("wrong_delimiter.tsv", csv_delimiter=","),
         DataFormatError, "wrong_delimiter.tsv", 1, "expected fields separated by ','"),
    Case("mixed_delimiters", lambda c: readers.read_ratings(bad("mixed_delimiters.csv")),
         DataFormatError, "mixed_delimiters.csv", 4, "expected 3 fields separated by ','"),
    Case("missing_column", lambda c: load_csv("missing_column.csv"),
         DataFormatError, "missing_column.csv", 3, "expected 3 fields"),
    Case("non_numeric_rating", lambda c: load_csv("non_numeric_rating.csv"),
         DataFormatError, "non_numeric_rating.csv", 3, "expected a finite number in field 3"),
    Case("nan_rating", lambda c: load_csv("nan_rating.csv"),
         DataFormatError, "nan_rating.csv", 4, "got 'NaN'"),
    Case("inf_rating", lambda c: load_csv("inf_rating.csv"),
         DataFormatError, "inf_rating.csv", 2, "expected a finite number in field 3, got 'inf'"),
    Case("overflowing_rating", lambda c: load_csv("overflowing_rating.csv"),
         DataFormatError, "overflowing_rating.csv", 3, "got '1e999'"),
    Case("empty_rating_field", lambda c: load_csv("empty_rating_field.csv"),
         DataFormatError, "empty_rating_field.csv", 3, "expected a finite number"),
    Case("short_first_line", lambda c: readers.read_ratings(bad("short_first_line.csv")),
         DataFormatError, "short_first_line.csv", 1,
         "expected 4 fields separated by ',', got 3"),
    Case("non_ascii_digit_rating", lambda c: load_csv("arabic_digit_rating.csv"),
         DataFormatError, "arabic_digit_rating.csv", 3, "expected a finite number in field 3"),
    Case("float_id_beyond_2_53", lambda c: load_csv("float_id_beyond_2_53.csv"),
         DataFormatError, "float_id_beyond_2_53.csv", 3,
         "expected an integer user id in field 1, got '18014398509481985.0' (a number "
         "written as a float is taken as an integer only up to 2**53"),
    Case("float_id_lost_fraction", lambda c: load_csv("float_id_lost_fraction.csv"),
         DataFormatError, "float_id_lost_fraction.csv", 3,
         "expected an integer user id in field 1, got '1.0000000000000001' (not a whole "
         "number)"),
    Case("ratings_dat_float_item_id",
         lambda c: datasets.load(data_cfg(name="movielens_1m",
                                          path=bad("ml-1m_float_item_id/ratings.dat"))),
         DataFormatError, "ml-1m_float_item_id/ratings.dat", 2,
         "expected an integer item id in field 2, got '1e30'"),
    Case("fractional_id", lambda c: load_csv("fractional_id.csv"),
         DataFormatError, "fractional_id.csv", 2,
         "expected an integer user id in field 1, got '1.5'"),
    Case("stray_quote", lambda c: readers.read_ratings(bad("stray_quote.csv")),
         DataFormatError, "stray_quote.csv", 3, "quoted field may not hold the delimiter"),
    Case("unknown_header", lambda c: readers.read_ratings(bad("unknown_header.csv")),
         DataFormatError, "unknown_header.csv", 1,
         "expected a header naming the user, item and rating columns"),
    Case("columns_past_the_fields", lambda c: load_csv("valid.csv", csv_columns=(0, 1, 5)),
         DataFormatError, "valid.csv", 2, "expected at least 6 fields (column 5 is used)"),
    # Ratings outside the declared scale.
    Case("rating_above_scale",
         lambda c: load_csv("rating_above_scale.csv", rating_min=1.0, rating_max=5.0),
         DataFormatError, "rating_above_scale.csv", 4, "expected a rating in [1, 5], got 7"),
    Case("movielens_100k_rating_zero",
         lambda c: datasets.load(data_cfg(name="movielens_100k",
                                          path=bad("ml-100k_rating_zero/u.data"))),
         DataFormatError, "ml-100k_rating_zero/u.data", 3, "expected a rating in [1, 5], got 0"),
    Case("test_rating_outside_the_training_scale",
         lambda c: load_csv("scale_train.csv", test_path=bad("scale_test.csv")),
         DataFormatError, "scale_test.csv", 3,
         f"expected a rating in [1, 4], got 5; the scale is the range of the training "
         f"ratings in {bad('scale_train.csv')} (widen it deliberately with "
         "--config.data.rating_min and --config.data.rating_max)"),
    Case("one_rating_value", lambda c: load_csv("one_rating_value.csv"),
         DataFormatError, "one_rating_value.csv", None,
         "expected ratings of at least two values to take the rating scale from, got only "
         "4 (2 ratings); set the scale with --config.data.rating_min"),
    Case("rating_beyond_float32", lambda c: load_csv("float32_overflow_rating.csv"),
         DataFormatError, "float32_overflow_rating.csv", 3,
         "expected a rating within +-3.403e+38 (ratings are stored as float32), got 1e+300"),
    # Duplicates (the default policy; keep_last and mean are tested below).
    Case("duplicate_pair", lambda c: load_csv("duplicate_pair.csv"),
         DataFormatError, "duplicate_pair.csv", 4,
         "got user 1 item 10 again (first at line 2); to merge repeats pass "
         "--config.data.duplicates=keep_last (the last rating) or "
         "--config.data.duplicates=mean (their mean)"),
    # Nothing to read.
    Case("empty_file", lambda c: load_csv("empty.csv"),
         DataFormatError, "empty.csv", None, "expected ratings, got an empty file"),
    Case("blank_lines_only", lambda c: load_csv("blank_lines.csv"),
         DataFormatError, "blank_lines.csv", None, "expected ratings, got an empty file"),
    Case("header_only", lambda c: load_csv("header_only.csv"),
         DataFormatError, "header_only.csv", None, "expected ratings after the header"),
    # Compressed and archived files cut short.
    Case("truncated_gzip", lambda c: load_csv("truncated.csv.gz"),
         DataFormatError, "truncated.csv.gz", None, "expected a complete gzip file"),
    Case("truncated_zip",
         lambda c: datasets.load(data_cfg(name="movielens_1m",
                                          path=bad("truncated_zip/ml-1m.zip"))),
         DataFormatError, "truncated_zip/ml-1m.zip", None, "expected a complete zip archive"),
    Case("corrupt_zip_member", lambda c: load_csv("corrupt_member.zip"),
         DataFormatError, "corrupt_member.zip:ratings.csv", None,
         "expected a complete zip member"),
    Case("zip_with_two_ratings_files", lambda c: load_csv("two_ratings_files.zip"),
         DataFormatError, "two_ratings_files.zip", None,
         "expected one ratings file in the zip, got 2: a/ratings.csv, b/ratings.csv; unzip "
         "the one to read and pass it as the data path (--config.data.path=FILE)"),
    Case("empty_zip", lambda c: load_csv("empty.zip"),
         DataFormatError, "empty.zip", None,
         "expected a ratings file in the zip, got an archive that holds no files"),
    Case("bzip2_file", lambda c: load_csv("ratings.csv.bz2"),
         DataFormatError, "ratings.csv.bz2", None,
         "got bzip2-compressed data; decompress it (bunzip2) first"),
    Case("tar_cut_inside_a_member",
         lambda c: netflix_formats.read_training_set(
             bad("netflix_tar_cut_in_member/training_set.tar")),
         DataFormatError, "netflix_tar_cut_in_member/training_set.tar", None,
         "expected a complete tar archive, got a truncated or corrupt one"),
    Case("tar_cut_after_a_member",
         lambda c: netflix_formats.read_training_set(
             bad("netflix_tar_cut_after_member/training_set.tar")),
         DataFormatError, "netflix_tar_cut_after_member/training_set.tar", None,
         "without its end-of-archive block"),
    Case("tar_cut_inside_the_first_header",
         lambda c: netflix_formats.read_training_set(
             bad("netflix_tar_cut_in_header/training_set.tar")),
         DataFormatError, "netflix_tar_cut_in_header/training_set.tar", None,
         "expected a tar archive"),
    Case("tar_gz_cut_inside_the_gzip_header",
         lambda c: netflix_formats.read_training_set(
             bad("netflix_tar_gz_cut/training_set.tar.gz")),
         DataFormatError, "netflix_tar_gz_cut/training_set.tar.gz", None,
         "got a truncated or unreadable archive"),
    Case("truncated_mat",
         lambda c: datasets.load(data_cfg(name="jester",
                                          path=bad("jester_truncated/jester3.mat"))),
         DataFormatError, "jester_truncated/jester3.mat", None,
         "expected a MATLAB .mat file"),
    Case("truncated_converted_netflix_split",
         lambda c: datasets.load(data_cfg(name="netflix", path=bad("netflix_npz_truncated"))),
         DataFormatError, "netflix_npz_truncated/full/ratings.npz", None,
         "expected a complete .npz of a converted split"),
    # Text encodings and line ends.
    Case("utf16_with_bom", lambda c: load_csv("utf16_bom.csv"),
         DataFormatError, "utf16_bom.csv", 1, "got UTF-16 or UTF-32"),
    Case("utf16_without_bom", lambda c: load_csv("utf16le_no_bom.csv"),
         DataFormatError, "utf16le_no_bom.csv", 1, "got a NUL byte"),
    Case("latin1_string_ids", lambda c: load_csv("latin1_string_ids.csv", csv_string_ids=True),
         DataFormatError, "latin1_string_ids.csv", 3, "expected UTF-8 text, got the byte 0xeb"),
    Case("lone_cr_line_ends", lambda c: load_csv("cr_line_endings.csv"),
         DataFormatError, "cr_line_endings.csv", 1, "separated by \\r alone"),
    Case("netflix_titles_utf16",
         lambda c: netflix_formats.read_movie_titles(
             bad("netflix_titles_utf16/movie_titles.txt")),
         DataFormatError, "netflix_titles_utf16/movie_titles.txt", 1,
         "expected ISO-8859-1 text, got a NUL byte"),
    Case("netflix_mv_file_utf16",
         lambda c: netflix_formats.read_training_set(bad("netflix_mv_utf16/mv_0000001.txt")),
         DataFormatError, "netflix_mv_utf16/mv_0000001.txt", 1,
         "expected ASCII text, got a NUL byte"),
    # Jester dataset 1 matrices.
    Case("jester_count_disagrees", lambda c: readers.read_ratings(bad("jester_count_mismatch.csv")),
         DataFormatError, "jester_count_mismatch.csv", 2,
         "expected column 0 to count the rated jokes (2), got 3"),
    Case("jester_no_rating_at_all",
         lambda c: datasets.load(data_cfg(name="jester", path=bad("jester_no_ratings.csv"))),
         DataFormatError, "jester_no_ratings.csv", None, "expected ratings, got none"),
    # Netflix Prize files.
    Case("netflix_block_without_movie_line",
         lambda c: netflix_formats.read_training_set(
             bad("netflix_no_movie_line/combined_data_1.txt")),
         DataFormatError, "netflix_no_movie_line/combined_data_1.txt", 1,
         "expected a `MovieID:` line starting each block"),
    Case("netflix_mv_file_of_another_movie",
         lambda c: netflix_formats.read_training_set(
             bad("netflix_mv_wrong_movie/mv_0000001.txt")),
         DataFormatError, "netflix_mv_wrong_movie/mv_0000001.txt", 1,
         "expected `1:` (the number in the file name)"),
    Case("netflix_impossible_date",
         lambda c: netflix_formats.read_training_set(
             bad("netflix_impossible_date/combined_data_1.txt")),
         DataFormatError, "netflix_impossible_date/combined_data_1.txt", 4,
         "expected a date YYYY-MM-DD, got '2005-02-30'"),
    Case("netflix_slashed_date",
         lambda c: netflix_formats.read_training_set(
             bad("netflix_slashed_date/combined_data_1.txt")),
         DataFormatError, "netflix_slashed_date/combined_data_1.txt", 3,
         "expected a date YYYY-MM-DD, got '2005/05/13'"),
    Case("netflix_repeated_customer",
         lambda c: netflix_formats.read_training_set(
             bad("netflix_repeated_customer/combined_data_1.txt")),
         DataFormatError, "netflix_repeated_customer/combined_data_1.txt", 4,
         "expected each CustomerID once per movie"),
    Case("netflix_qualifying_bad_date",
         lambda c: netflix_formats.read_qualifying(bad("netflix_bad_qualifying/qualifying.txt")),
         DataFormatError, "netflix_bad_qualifying/qualifying.txt", 3,
         "expected CustomerID,YYYY-MM-DD"),
    Case("netflix_title_bad_year",
         lambda c: netflix_formats.read_movie_titles(
             bad("netflix_bad_title_year/movie_titles.txt")),
         DataFormatError, "netflix_bad_title_year/movie_titles.txt", 2,
         "expected a 4-digit YearOfRelease or NULL, got '20O4'"),
    # MovieLens official formats.
    Case("ratings_dat_three_fields",
         lambda c: datasets.load(data_cfg(name="movielens_1m",
                                          path=bad("ml-1m_three_fields/ratings.dat"))),
         DataFormatError, "ml-1m_three_fields/ratings.dat", 3,
         "expected 4 fields separated by '::', got 3"),
    Case("ratings_dat_with_commas",
         lambda c: readers.read_ratings(bad("ml-1m_commas/ratings.dat")),
         DataFormatError, "ml-1m_commas/ratings.dat", 1, "expected fields separated by '::'"),
    Case("u_data_three_fields",
         lambda c: datasets.load(data_cfg(name="movielens_100k",
                                          path=bad("ml-100k_three_fields/u.data"))),
         DataFormatError, "ml-100k_three_fields/u.data", 1,
         "expected at least 4 fields (column 3 is used), got 3"),
    Case("u_data_date_timestamp",
         lambda c: readers.read_ratings(bad("ml-100k_date_timestamp/u.data")),
         DataFormatError, "ml-100k_date_timestamp/u.data", 2,
         "expected an integer in field 4, got '1998-03-04'"),
    Case("ratings_csv_wrong_header",
         lambda c: datasets.load(data_cfg(name="movielens_20m",
                                          path=bad("ml-20m_wrong_header"))),
         DataFormatError, "ml-20m_wrong_header/ml-20m/ratings.csv", 1,
         "expected the header 'userId,movieId,rating,timestamp'"),
    # A predefined test file.
    Case("test_pair_also_in_train",
         lambda c: load_csv("cross_train.csv", test_path=bad("cross_test.csv")),
         DataFormatError, "cross_test.csv", 3,
         f"got user 2 item 11 also at {bad('cross_train.csv')}:3"),
    # Missing data.
    Case("missing_data_path", lambda c: load_csv("does_not_exist.csv"),
         DataNotFoundError, "does_not_exist.csv", None, "no such file or folder"),
    Case("missing_official_data_path",
         lambda c: datasets.load(data_cfg(name="movielens_1m", path=bad("no_such_folder"))),
         DataNotFoundError, "no_such_folder", None, "(data.path for movielens_1m)"),
    Case("missing_test_path", lambda c: load_csv("valid.csv", test_path=bad("no_test.csv")),
         DataNotFoundError, "no_test.csv", None, "no such file or folder"),
    Case("folder_without_ratings", lambda c: load_csv("netflix_bad_qualifying"),
         DataNotFoundError, "netflix_bad_qualifying", None, "no ratings file found"),
    Case("missing_dataset_without_download", _missing_dataset,
         DataNotFoundError, None, None,
         "Download https://files.grouplens.org/datasets/movielens/ml-1m.zip and save "
         "ml-1m.zip in "),
    Case("missing_converted_netflix_split",
         lambda c: datasets.load(data_cfg(name="netflix", path=bad("netflix_no_movie_line"))),
         DataNotFoundError, None, None, "convert your copy with `python -m "
         "autorec_jax.data.netflix"),
    # Paths that are not regular files, or cannot be read.
    Case("named_pipe_as_data_path", lambda c: load_csv("special/ratings_fifo.csv"),
         DataAccessError, "special/ratings_fifo.csv", None,
         "expected a file or folder, got a named pipe (FIFO)"),
    Case("named_pipe_as_test_path",
         lambda c: load_csv("valid.csv", test_path=bad("special/ratings_fifo.csv")),
         DataAccessError, "special/ratings_fifo.csv", None,
         "expected a file or folder, got a named pipe (FIFO)"),
    Case("symbolic_link_loop", lambda c: load_csv("special/loop.csv"),
         DataAccessError, "special/loop.csv", None,
         "expected a file or folder, got a symbolic link loop"),
    Case("dangling_symbolic_link", lambda c: load_csv("special/dangling.csv"),
         DataNotFoundError, "special/dangling.csv", None,
         "no such file or folder: it is a symbolic link to missing.csv, which does not "
         "exist"),
    Case("folder_as_a_ratings_file",
         lambda c: readers.read_movielens_dat(bad("special/folder.csv")),
         DataAccessError, "special/folder.csv", None, "expected a file, got a folder"),
    Case("folder_as_a_titles_file", lambda c: titles.read_titles(bad("special/folder.csv")),
         DataAccessError, "special/folder.csv", None, "expected a titles file, got a folder"),
    Case("permission_denied", _permission_denied,
         DataAccessError, "valid.csv", None,
         "expected a readable file, got permission denied (EACCES)"),
    # Data config values.
    Case("unknown_data_name", lambda c: datasets.load(data_cfg(name="movielens_2m")),
         DataConfigError, None, None, "unknown dataset data.name='movielens_2m'"),
    Case("csv_without_path", lambda c: datasets.load(data_cfg(name="csv")),
         DataConfigError, None, None, "data.name='csv' needs data.path"),
    Case("csv_columns_repeated", lambda c: load_csv("valid.csv", csv_columns=(0, 0, 1)),
         DataConfigError, None, None, "data.csv_columns=(0, 0, 1) must be 3 or 4 distinct"),
    Case("csv_columns_too_few", lambda c: load_csv("valid.csv", csv_columns=(0, 1)),
         DataConfigError, None, None, "data.csv_columns=(0, 1) must be 3 or 4"),
    Case("csv_columns_negative", lambda c: load_csv("valid.csv", csv_columns=(0, 1, -1)),
         DataConfigError, None, None, "data.csv_columns=(0, 1, -1)"),
    Case("csv_delimiter_two_characters", lambda c: load_csv("valid.csv", csv_delimiter="ab"),
         DataConfigError, None, None, "data.csv_delimiter: delimiter must be one ASCII"),
    Case("csv_header_value", lambda c: load_csv("valid.csv", csv_header="maybe"),
         DataConfigError, None, None, "data.csv_header='maybe' must be one of auto, yes, no"),
    Case("duplicates_policy", lambda c: load_csv("valid.csv", duplicates="first"),
         DataConfigError, None, None, "data.duplicates='first' must be one of error"),
    Case("empty_rating_scale",
         lambda c: load_csv("valid.csv", rating_min=5.0, rating_max=1.0),
         DataConfigError, None, None, "the rating scale [5, 1] is empty"),
    Case("netflix_time_split", lambda c: datasets.load(data_cfg(name="netflix",
                                                                time_split="2y")),
         DataConfigError, None, None, "data.time_split='2y' must be one of full, 3m, 6m, 1y"),
    # Config values (checked before any data is read).
    Case("negative_learning_rate",
         lambda c: config_checks.validate(_cli_config(**{"optim.learning_rate": -0.1})),
         config_checks.ConfigError, None, None, "optim.learning_rate=-0.1 must be > 0"),
    Case("dropout_one",
         lambda c: config_checks.validate(_cli_config(**{"model.dropout": 1.0})),
         config_checks.ConfigError, None, None, "model.dropout=1.0 must be in [0, 1)"),
    Case("empty_hidden_sizes",
         lambda c: config_checks.validate(_cli_config(**{"model.hidden": ()})),
         config_checks.ConfigError, None, None, "model.hidden=() must be a non-empty tuple"),
    Case("zero_hidden_width",
         lambda c: config_checks.validate(_cli_config(**{"model.hidden": (64, 0)})),
         config_checks.ConfigError, None, None, "model.hidden=(64, 0)"),
    Case("zero_batch_size",
         lambda c: config_checks.validate(_cli_config(**{"train.batch_size": 0})),
         config_checks.ConfigError, None, None, "train.batch_size=0 must be >= 1"),
]


@pytest.fixture
def ctx(tmp_path, monkeypatch):
  return types.SimpleNamespace(tmp_path=tmp_path, monkeypatch=monkeypatch)


def test_the_corpus_has_at_least_25_distinct_bad_inputs():
  assert len({c.id for c in CASES}) == len(CASES)
  files = {c.file for c in CASES if c.file is not None}
  assert len(CASES) >= 25 and len(files) >= 25


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_bad_input_raises_its_exact_error_naming_file_and_line(case, ctx):
  with pytest.raises(Exception) as err:
    case.read(ctx)
  assert type(err.value) is case.error, f"{type(err.value).__name__}: {err.value}"
  message = str(err.value)
  if case.file is not None:
    name = case.file if os.path.isabs(case.file) else bad(case.file)
    prefix = f"{name}:{case.line}: " if case.line is not None else f"{name}: "
    assert message.startswith(prefix), message
  if isinstance(err.value, DataFormatError):
    assert err.value.line == case.line
  assert case.says in message, message
  assert "\n" not in message  # one line on the command line


def test_every_corpus_file_is_a_case():
  used = {c.file.split(":")[0] for c in CASES if c.file is not None}  # zip:member
  used |= {"duplicate_pair.csv", "jester_user_without_ratings.csv", "cross_train.csv",
           "valid.csv", "scale_train.csv"}
  on_disk = {str(p.relative_to(CORPUS)) for p in CORPUS.rglob("*") if p.is_file()}
  assert on_disk - used == set()


def test_make_corpus_writes_the_same_small_files_every_time(tmp_path):
  for path in make_corpus.build(tmp_path):
    rel = path.relative_to(tmp_path)
    assert (CORPUS / rel).read_bytes() == path.read_bytes(), rel
    assert path.stat().st_size < 2048, rel


def test_a_long_first_line_without_line_break_is_refused(tmp_path):
  path = tmp_path / "blob.csv"
  path.write_bytes(b"1,2," * 20000)
  with pytest.raises(DataFormatError) as err:
    readers.read_ratings(path)
  assert type(err.value) is DataFormatError
  assert str(err.value).startswith(f"{path}:1: expected lines of text, got no line break")


def test_no_warning_leaks_from_a_bad_integer(tmp_path):
  path = tmp_path / "r.csv"
  path.write_text("1,10,4\nInfinity,11,3\n")
  with warnings.catch_warnings():
    warnings.simplefilter("error")
    with pytest.raises(DataFormatError) as err:
      readers.read_ratings(path)
  assert str(err.value).startswith(f"{path}:2: expected an integer user id in field 1")


# ----------------------------------------------------------------------------------------
# Documented policies (not errors).


@pytest.mark.parametrize("policy,rating", [("keep_last", 2.0), ("mean", 3.0)])
def test_duplicate_policies_give_the_documented_rating(policy, rating):
  loaded = load_csv("duplicate_pair.csv", duplicates=policy, rating_min=1.0, rating_max=5.0)
  r = loaded.ratings
  pairs = {(int(r.user_ids[u]), int(r.item_ids[i])): float(v)
           for u, i, v in zip(r.user, r.item, r.rating)}
  assert pairs == {(1, 10): rating, (2, 11): 3.0, (3, 12): 5.0}
  raw = readers.read_ratings(bad("duplicate_pair.csv"), duplicates=policy)
  assert raw.line.tolist() == [3, 4, 5]  # the merged pair keeps its last line


def test_a_jester_user_without_ratings_is_left_out_and_ids_stay_row_numbers():
  raw = readers.read_ratings(bad("jester_user_without_ratings.csv"))
  assert sorted(set(raw.user.tolist())) == [1, 3]  # row 2: count 0, every joke 99
  assert raw.line.tolist() == [1, 1, 3]
  loaded = datasets.load(data_cfg(name="jester", path=bad("jester_user_without_ratings.csv")))
  assert loaded.ratings.num_users == 2
  assert loaded.ratings.user_ids.tolist() == [1, 3]
  assert "A row with no rated joke" in jester.__doc__


# ----------------------------------------------------------------------------------------
# Errors raised while training, as documented in the README's Troubleshooting section.


def test_batch_not_divisible_by_the_device_count():
  # A ValueError today (parallel.check_batch_size); its message names the field.
  import jax  # pylint: disable=import-outside-toplevel
  n = jax.device_count()
  assert n == 8  # tests/conftest.py
  with pytest.raises(ValueError) as err:
    parallel.check_batch_size(12)
  assert str(err.value) == ("train.batch_size=12 is not divisible by the 8 devices; use a "
                            "multiple of 8")


def test_documented_training_messages_are_the_real_ones(tmp_path):
  with pytest.raises(FloatingPointError) as err:
    metrics.check_finite(math.nan, what="train/loss", epoch=3, step=120)
  assert str(err.value).startswith("train/loss became nan at epoch 3 (step 120); ")
  need = resources.estimate(num_inputs=3706, hidden=(400_000_000,), tied=False,
                            optimizer="adam", batch_rows=64, eval_rows=512)
  with pytest.raises(config_checks.ConfigError) as err:
    resources.check_fits(need, 8 * resources.GIB, devices=1)
  assert str(err.value).startswith("the model does not fit: about ")
  assert "GiB needed" in str(err.value) and "lower model.hidden" in str(err.value)
  cfg = movielens_1m.get_config("tiny")
  run_config.write_config(cfg, str(tmp_path))
  other = movielens_1m.get_config("tiny")
  other.model.dropout = 0.5
  workdir_lib.check_workdir(other, str(tmp_path))  # nothing trained: config.json yields
  (tmp_path / "results.json").write_text("{}")
  with pytest.raises(config_checks.ConfigError) as err:
    workdir_lib.check_workdir(other, str(tmp_path))
  assert str(err.value).startswith(f"{tmp_path} holds a run with a different config "
                                   "(model.dropout differ, per its config.json)")
  assert "--overwrite" in str(err.value)
  stop = signals.Interrupted(signal.SIGTERM, 3, 17)
  assert str(stop) == ("stopped by SIGTERM after 3 epochs and 17 batches of the next; a "
                       "checkpoint was saved: run the same command to resume")


def test_troubleshooting_covers_every_error_class():
  doc = (conftest.REPO / "docs" / "troubleshooting.md").read_text(encoding="utf-8")
  for phrase in ("DataFormatError", "DataNotFoundError", "DataAccessError",
                 "DataConfigError", "ConfigError",
                 "became nan at epoch", "the model does not fit: about",
                 "holds a run with a different config", "interrupted: stopped by SIGTERM",
                 "data.download=True", "is not divisible by the"):
    assert phrase in doc, phrase


# ----------------------------------------------------------------------------------------
# End to end: `python -m autorec_jax.main` on bad input.

CLI_CASES = {
    "non_numeric_rating": (["--config.data.name=csv",
                            f"--config.data.path={bad('non_numeric_rating.csv')}"], 1,
                           f"error: {bad('non_numeric_rating.csv')}:3: expected a finite "
                           "number in field 3, got 'good'"),
    "truncated_gzip": (["--config.data.name=csv",
                        f"--config.data.path={bad('truncated.csv.gz')}"], 1,
                       f"error: {bad('truncated.csv.gz')}: expected a complete gzip file"),
    "named_pipe": (["--config.data.name=csv",
                    f"--config.data.path={bad('special/ratings_fifo.csv')}"], 1,
                   f"error: {bad('special/ratings_fifo.csv')}: expected a file or folder, got "
                   "a named pipe (FIFO)"),
    "missing_dataset": (["--config.data.download=False"], 1,
                        "error: dataset movielens_1m not found: looked for"),
    "unknown_field": (["--config.optim.learnin_rate=0.1"], 2, 'Did you mean "learning_rate"'),
}


@pytest.fixture(scope="module")
def cli_runs(tmp_path_factory):
  """Starts every CLI case at once (each is mostly interpreter start-up), then waits."""
  root = tmp_path_factory.mktemp("cli")
  (root / "data").mkdir()
  env = {**os.environ, "JAX_PLATFORMS": "cpu", "JAX_NUM_CPU_DEVICES": "1",
         "AUTOREC_DATA_DIR": str(root / "data"), "HOME": str(root / "home")}
  procs = {}
  for name, (args, _, _) in CLI_CASES.items():
    cmd = [sys.executable, "-m", "autorec_jax.main", "--config=configs/movielens_1m.py:tiny",
           f"--workdir={root / name}", *args]
    procs[name] = subprocess.Popen(cmd, cwd=conftest.REPO, env=env, text=True,
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE)
  out = {}
  for name, proc in procs.items():
    stdout, stderr = proc.communicate(timeout=300)
    out[name] = (proc.returncode, stdout, stderr)
  return out


@pytest.mark.parametrize("name", CLI_CASES)
def test_cli_bad_input_is_one_error_line_and_a_nonzero_exit(name, cli_runs):
  _, code, expected = CLI_CASES[name]
  returncode, stdout, stderr = cli_runs[name]
  assert returncode == code, stderr[-2000:]
  assert "Traceback" not in stderr
  errors = [line for line in stderr.splitlines() if line.startswith("error: ")]
  assert len(errors) == 1, stderr[-2000:]
  if expected.startswith("error: "):
    assert errors[0].startswith(expected), errors[0]
  else:
    assert expected in errors[0], errors[0]
  assert "test RMSE" not in stdout
