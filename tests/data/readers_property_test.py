"""Property-based tests (hypothesis) of the text readers and the splits.

Readers: any valid triplet table, written with any supported delimiter, with or
without a header (in any column order when there is one), LF or CRLF, with blank
lines, plain, gzipped or zipped, reads back exactly (ids, ratings, timestamps and the
line of every rating); and any single corrupted line is reported at exactly that
line. Splits: for any size, fractions, folds and seed, train / valid / test are
disjoint, cover every rating, have the documented sizes and are deterministic.

Examples are drawn deterministically (`derandomize`), so the suite is reproducible.
"""

import gzip
import pathlib
import tempfile
import zipfile

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from autorec_jax.data import readers, splits
from autorec_jax.data.errors import DataFormatError

SETTINGS = dict(deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow])

# Written delimiter -> what separates fields on disk. Whitespace files use runs of
# spaces (a tab would be sniffed as the tab delimiter).
DELIMITERS = (",", "\t", ";", "|", "::", "spaces")
COMPRESSIONS = ("none", "gz", "zip")
# Header names the reader recognises, per role, and the role order on disk.
HEADER_NAMES = {"user": ("user_id", "userId", "UserID", "user"),
                "item": ("item_id", "movieId", "joke_id", "item"),
                "rating": ("rating", "Rating", "score", "stars"),
                "timestamp": ("timestamp", "Timestamp", "time")}

ids = st.integers(-(2**63), 2**63 - 1)
ratings = st.floats(allow_nan=False, allow_infinity=False)
stamps = st.integers(-(2**63), 2**63 - 1)


@st.composite
def tables(draw, min_rows=1, max_rows=30, string_ids=False):
  """(rows, with_timestamps): unique (user, item) pairs with a rating (and time)."""
  if string_ids:
    id_strategy = st.text(
        alphabet=st.characters(blacklist_categories=("Cc", "Cs", "Z"),
                               blacklist_characters=",;|:\t\"'\\\ufeff"),
        min_size=1, max_size=8)
  else:
    id_strategy = ids
  pairs = draw(st.lists(st.tuples(id_strategy, id_strategy), min_size=min_rows,
                        max_size=max_rows, unique=True))
  with_time = draw(st.booleans())
  rows = [(u, i, draw(ratings), draw(stamps) if with_time else None) for u, i in pairs]
  return rows, with_time


@st.composite
def layouts(draw):
  """How a table is written: delimiter, header (or None) and role order, line ends."""
  delimiter = draw(st.sampled_from(DELIMITERS))
  with_header = draw(st.booleans())
  return {"delimiter": delimiter, "with_header": with_header,
          "shuffle": draw(st.permutations(range(4))) if with_header else None,
          "names": {role: draw(st.sampled_from(names))
                    for role, names in HEADER_NAMES.items()},
          "newline": draw(st.sampled_from(("\n", "\r\n"))),
          "final_newline": draw(st.booleans()),
          "compression": draw(st.sampled_from(COMPRESSIONS))}


def _join(fields, delimiter, gap):
  return (" " * gap).join(fields) if delimiter == "spaces" else delimiter.join(fields)


def render(rows, with_time, layout, blank_after=()):
  """The file's text and the 1-based line number of each row."""
  roles = ["user", "item", "rating"] + (["timestamp"] if with_time else [])
  if layout["shuffle"] is not None:
    roles = [roles[k] for k in layout["shuffle"] if k < len(roles)]
  delimiter = layout["delimiter"]
  lines, where = [], []
  if layout["with_header"]:
    lines.append(_join([layout["names"][r] for r in roles], delimiter, 1))
  for k, (u, i, r, t) in enumerate(rows):
    value = {"user": str(u), "item": str(i), "rating": repr(r), "timestamp": str(t)}
    lines.append(_join([value[role] for role in roles], delimiter, 1 + k % 3))
    where.append(len(lines))
    if k in blank_after:
      lines.append("")
  text = layout["newline"].join(lines) + (layout["newline"] if layout["final_newline"]
                                          else "")
  return text, where


def write(folder: pathlib.Path, text: str, compression: str) -> tuple[pathlib.Path, str]:
  """Writes `text` (UTF-8) as r.txt, r.txt.gz or r.zip; returns (path, name in errors)."""
  data = text.encode("utf-8")
  if compression == "gz":
    path = folder / "r.txt.gz"
    path.write_bytes(gzip.compress(data, mtime=0))
    return path, str(path)
  if compression == "zip":
    path = folder / "r.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
      zf.writestr("r.txt", data)
    return path, f"{path}:r.txt"
  path = folder / "r.txt"
  path.write_bytes(data)
  return path, str(path)


@settings(max_examples=150, **SETTINGS)
@given(table=tables(), layout=layouts(), blanks=st.sets(st.integers(0, 29), max_size=3))
def test_valid_tables_round_trip_exactly(table, layout, blanks):
  rows, with_time = table
  text, where = render(rows, with_time, layout, blank_after=blanks)
  with tempfile.TemporaryDirectory() as d:
    path, name = write(pathlib.Path(d), text, layout["compression"])
    raw = readers.read_ratings(path)
  users, items, values, times = zip(*rows)
  np.testing.assert_array_equal(raw.user, np.array(users, np.int64))
  np.testing.assert_array_equal(raw.item, np.array(items, np.int64))
  # Bit-exact: the same doubles, signed zeros included.
  np.testing.assert_array_equal(raw.rating.view(np.int64),
                                np.array(values, np.float64).view(np.int64))
  if with_time:
    np.testing.assert_array_equal(raw.timestamp, np.array(times, np.int64))
  else:
    assert raw.timestamp is None
  np.testing.assert_array_equal(raw.line, where)
  assert raw.paths == (name,)


@settings(max_examples=60, **SETTINGS)
@given(table=tables(string_ids=True), layout=layouts())
def test_string_ids_round_trip_exactly(table, layout):
  rows, with_time = table
  text, _ = render(rows, with_time, layout)
  with tempfile.TemporaryDirectory() as d:
    path, _ = write(pathlib.Path(d), text, layout["compression"])
    raw = readers.read_ratings(path, string_ids=True)
  assert list(raw.user) == [u for u, _, _, _ in rows]
  assert list(raw.item) == [i for _, i, _, _ in rows]
  np.testing.assert_array_equal(raw.rating, [r for _, _, r, _ in rows])


# How a line is broken: (role to change or None, replacement); None drops or adds a field.
CORRUPTIONS = [("rating", v) for v in ("x", "nan", "NaN", "inf", "-inf", "1e999", "",
                                        "4..5", "1_0", "\u0663", "five")]
CORRUPTIONS += [("user", v) for v in ("1.5", "abc", "nan", "1e400",
                                      "99999999999999999999", "0x1f", "")]
CORRUPTIONS += [("item", v) for v in ("-", "2,5", "\u00bd", '"5', '5"')]
CORRUPTIONS += [("timestamp", v) for v in ("2005-01-01", "1.25", "now")]
CORRUPTIONS += [(None, "drop"), (None, "add")]


@settings(max_examples=200, **SETTINGS)
@given(table=tables(min_rows=3), layout=layouts(), data=st.data())
def test_one_corrupted_line_is_reported_at_that_line(table, layout, data):
  rows, with_time = table
  choices = [c for c in CORRUPTIONS if c[0] != "timestamp" or with_time]
  # Half the draws drop or add a field, the hardest case on the first line.
  role, value = data.draw(st.one_of(st.sampled_from(choices[-2:]), st.sampled_from(choices)))
  if role == "item" and value == "2,5" and layout["delimiter"] != ",":
    value = "2.5.5"  # a comma is the delimiter only in comma files
  k = data.draw(st.one_of(st.sampled_from([0, len(rows) - 1]),
                          st.integers(0, len(rows) - 1)))
  text, where = render(rows, with_time, layout)
  lines = text.split(layout["newline"])
  line_no = where[k]
  lines[line_no - 1] = corrupt(lines[line_no - 1], rows[k], with_time, layout, role, value)
  with tempfile.TemporaryDirectory() as d:
    path, name = write(pathlib.Path(d), layout["newline"].join(lines),
                       layout["compression"])
    with pytest.raises(DataFormatError) as err:
      readers.read_ratings(path)
  assert type(err.value) is DataFormatError
  assert err.value.line == line_no, str(err.value)
  assert str(err.value).startswith(f"{name}:{line_no}: ")


def corrupt(line, row, with_time, layout, role, value):
  """`line` with one field replaced, or one field dropped or added."""
  roles = ["user", "item", "rating"] + (["timestamp"] if with_time else [])
  if layout["shuffle"] is not None:
    roles = [roles[k] for k in layout["shuffle"] if k < len(roles)]
  u, i, r, t = row
  fields = [{"user": str(u), "item": str(i), "rating": repr(r), "timestamp": str(t)}[x]
            for x in roles]
  if role is None and value == "drop":
    fields.pop()
  elif role is None:
    fields.append("7")
  else:
    fields[roles.index(role)] = value
  return _join(fields, layout["delimiter"], 1)


# ----------------------------------------------------------------------------------------
# Splits.


@st.composite
def split_settings(draw):
  n = draw(st.integers(0, 3000))
  num_folds = draw(st.sampled_from([0, 0, 1] + list(range(2, 11))))
  if num_folds >= 2 and num_folds > n:
    num_folds = 0
  return dict(num_ratings=n,
              test_fraction=draw(st.floats(0.0, 0.99)),
              valid_fraction=draw(st.floats(0.0, 0.99)),
              num_folds=num_folds,
              fold=draw(st.integers(0, num_folds - 1)) if num_folds >= 2 else 0,
              seed=draw(st.integers(0, 2**32 - 1)))


def _check_partition(split, n):
  parts = [split.train, split.valid, split.test]
  for part in parts:
    assert part.dtype == np.int64
    assert np.all(np.diff(part) > 0)  # sorted, no repeats
  both = np.concatenate(parts)
  assert len(both) == n  # disjoint ...
  np.testing.assert_array_equal(np.sort(both), np.arange(n))  # ... and covering


@settings(max_examples=150, **SETTINGS)
@given(cfg=split_settings())
def test_split_parts_are_disjoint_covering_sized_and_deterministic(cfg):
  n = cfg["num_ratings"]
  split = splits.make_split(n, **{k: v for k, v in cfg.items() if k != "num_ratings"})
  _check_partition(split, n)
  again = splits.make_split(n, **{k: v for k, v in cfg.items() if k != "num_ratings"})
  for name in ("train", "valid", "test"):
    np.testing.assert_array_equal(getattr(split, name), getattr(again, name))
  if cfg["num_folds"] >= 2:
    bounds = np.linspace(0, n, cfg["num_folds"] + 1).round().astype(int)
    assert len(split.test) == bounds[cfg["fold"] + 1] - bounds[cfg["fold"]]
  else:
    assert len(split.test) == int(round(cfg["test_fraction"] * n))
  rest = n - len(split.test)
  assert len(split.valid) == int(round(cfg["valid_fraction"] * rest))
  # Validation is carved from train alone: another valid_fraction, the same test part.
  other = splits.make_split(n, **{**{k: v for k, v in cfg.items() if k != "num_ratings"},
                                  "valid_fraction": 0.0})
  np.testing.assert_array_equal(other.test, split.test)
  np.testing.assert_array_equal(other.train, np.sort(np.concatenate([split.train,
                                                                     split.valid])))


@settings(max_examples=40, **SETTINGS)
@given(n=st.integers(2, 500), num_folds=st.integers(2, 10), seed=st.integers(0, 10**6))
def test_kfold_test_parts_partition_the_ratings(n, num_folds, seed):
  num_folds = min(num_folds, n)
  tests = [splits.kfold_split(n, num_folds, fold, seed)[1] for fold in range(num_folds)]
  np.testing.assert_array_equal(np.sort(np.concatenate(tests)), np.arange(n))
  sizes = [len(t) for t in tests]
  assert max(sizes) - min(sizes) <= 1


@settings(max_examples=60, **SETTINGS)
@given(mask=st.lists(st.booleans(), max_size=400), valid_fraction=st.floats(0.0, 0.99),
       seed=st.integers(0, 2**32 - 1))
def test_predefined_test_mask_is_the_test_part(mask, valid_fraction, seed):
  mask = np.array(mask, bool)
  split = splits.make_split(len(mask), test_fraction=0.1, num_folds=0, fold=0,
                            valid_fraction=valid_fraction, seed=seed,
                            predefined_test=mask)
  _check_partition(split, len(mask))
  np.testing.assert_array_equal(split.test, np.flatnonzero(mask))
