"""Netflix Prize: converts the training set into the paper's four time splits.

Kuchaiev & Ginsburg (2017), Table 1, following Wu et al.'s RRN, evaluate on four time
windows of the training set. Each split trains on every rating dated in its train
window; ratings in its test window whose customer and movie both occur in that train
part are halved at random into validation and test (others are dropped):

  split  train (inclusive)        test window (inclusive)
  full   1999-12-01..2005-11-30   2005-12-01..2005-12-31
  3m     2005-09-01..2005-11-30   2005-12-01..2005-12-31
  6m     2005-06-01..2005-11-30   2005-12-01..2005-12-31
  1y     2004-06-01..2005-05-31   2005-06-01..2005-06-30

Command line (input: a training_set/ folder of mv_ files, training_set.tar read as a
stream, or Kaggle's combined_data_*.txt, see `netflix_formats.read_training_set`):

  python -m autorec_jax.data.netflix --input=training_set.tar --output=netflix_splits

writes `DIR/<split>/ratings.npz`, `DIR/stats.json` and `DIR/README.txt`, atomically.
The halving uses `np.random.default_rng([seed, split_index])` (split_index: position in
full, 3m, 6m, 1y), so a seed gives byte-identical files. `load_converted` reads a split.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shutil
import sys
import tempfile
import time
import zipfile
from typing import Callable, Sequence

import numpy as np

from autorec_jax.data import errors
from autorec_jax.data import netflix_formats as formats
from autorec_jax.data.errors import DataError, DataFormatError, DataNotFoundError
from autorec_jax.data.netflix_formats import (MovieBlocks, MovieTitles, TrainingRatings,

                                              read_movie_titles, read_predictions,
                                              read_probe, read_qualifying,
                                              read_training_set, write_predictions)
from autorec_jax.data.types import Ratings

__all__ = ["SPLITS", "TimeSplit", "convert", "split_ratings", "load_converted", "main",
           "MovieBlocks", "MovieTitles", "TrainingRatings", "read_movie_titles",
           "read_predictions", "read_probe", "read_qualifying", "read_training_set",
           "write_predictions"]

SECONDS_PER_DAY = 86400
NPZ_ARRAYS = {"user": np.int32, "item": np.int32, "rating": np.float32,
              "timestamp": np.int64, "part": np.int8, "user_ids": np.int64,
              "item_ids": np.int64}
PART_NAMES = ("train", "valid", "test")  # values 0, 1, 2 of `part`
_TABLE_LIMIT = 1 << 27  # ids below this are mapped with a lookup table, else searchsorted
_CHUNK = 1 << 24  # rows per step where a temporary copy of a column would be large


@dataclasses.dataclass(frozen=True)
class TimeSplit:
  """A split's inclusive date windows (ISO dates) and its random stream index."""

  name: str
  index: int
  train: tuple[str, str]
  test: tuple[str, str]

  def days(self) -> tuple[int, int, int, int]:
    return tuple(formats.date_to_day(d) for d in self.train + self.test)


SPLITS = {s.name: s for s in (
    TimeSplit("full", 0, ("1999-12-01", "2005-11-30"), ("2005-12-01", "2005-12-31")),
    TimeSplit("3m", 1, ("2005-09-01", "2005-11-30"), ("2005-12-01", "2005-12-31")),
    TimeSplit("6m", 2, ("2005-06-01", "2005-11-30"), ("2005-12-01", "2005-12-31")),
    TimeSplit("1y", 3, ("2004-06-01", "2005-05-31"), ("2005-06-01", "2005-06-30")),
)}


class _IdIndex:
  """Dense indices for the ids present under a mask, numbered in sorted id order."""

  def __init__(self, ids: np.ndarray, mask: np.ndarray, top: int):
    if top < _TABLE_LIMIT:
      seen = np.zeros(top + 1, bool)
      for lo in range(0, len(ids), _CHUNK):
        seen[ids[lo:lo + _CHUNK][mask[lo:lo + _CHUNK]]] = True
      self.ids = np.flatnonzero(seen).astype(np.int64)
      self._table = np.full(top + 1, -1, np.int32)
      self._table[self.ids] = np.arange(len(self.ids), dtype=np.int32)
    else:
      self.ids = np.unique(np.concatenate([
          np.unique(ids[lo:lo + _CHUNK][mask[lo:lo + _CHUNK]])
          for lo in range(0, len(ids), _CHUNK)] or [ids[:0]])).astype(np.int64)
      self._table = None

  def __call__(self, x: np.ndarray) -> np.ndarray:
    """int32 index of each id in `x`, -1 where it is not present."""
    if self._table is not None:
      return self._table[x]
    pos = np.minimum(np.searchsorted(self.ids, x), max(len(self.ids) - 1, 0))
    found = (self.ids[pos] == x) if len(self.ids) else np.zeros(len(x), bool)
    return np.where(found, pos, -1).astype(np.int32)


@dataclasses.dataclass(eq=False)
class _SplitRows:
  """One split over a TrainingRatings: which rows it keeps, their parts, the id maps."""

  rows: np.ndarray  # bool[N]: the split's rows (train and kept test-window ratings)
  part: np.ndarray  # int8[N]: 0 train, 1 valid, 2 test (meaningful where rows)
  users: _IdIndex
  items: _IdIndex
  stats: dict
  window: int  # test-window ratings before dropping


def _split_rows(data: TrainingRatings, split: TimeSplit, seed: int) -> _SplitRows:
  train_first, train_last, test_first, test_last = split.days()
  day = data.day
  train = (day >= train_first) & (day <= train_last)
  top_user = int(data.customer.max(initial=0))
  top_item = int(data.movie.max(initial=0))
  users = _IdIndex(data.customer, train, top_user)
  items = _IdIndex(data.movie, train, top_item)
  window = np.flatnonzero((day >= test_first) & (day <= test_last))
  kept = window[(users(data.customer[window]) >= 0) & (items(data.movie[window]) >= 0)]
  rng = np.random.default_rng([seed, split.index])
  half = np.where(rng.random(len(kept)) < 0.5, 1, 2).astype(np.int8)
  part = np.zeros(len(day), np.int8)
  part[kept] = half
  rows = train
  rows[kept] = True
  stats = {"train": {"users": len(users.ids), "items": len(items.ids),
                     "ratings": int(np.count_nonzero(rows)) - len(kept)}}
  for value, name in ((1, "valid"), (2, "test")):
    sel = kept[half == value]
    stats[name] = {"users": _distinct(users(data.customer[sel]), len(users.ids)),
                   "items": _distinct(items(data.movie[sel]), len(items.ids)),
                   "ratings": len(sel)}
  return _SplitRows(rows, part, users, items, stats, len(window))


def _distinct(index: np.ndarray, size: int) -> int:
  """How many different values in `index`, ints in [0, size)."""
  seen = np.zeros(size, bool)
  seen[index] = True
  return int(np.count_nonzero(seen))


def _columns(data: TrainingRatings, s: _SplitRows) -> list[tuple[str, Callable]]:
  """The npz arrays of a split, each made only when it is written (bounds memory)."""
  rows = s.rows
  return [
      ("user", lambda: s.users(data.customer[rows])),
      ("item", lambda: s.items(data.movie[rows])),
      ("rating", lambda: data.rating[rows].astype(np.float32)),
      ("timestamp", lambda: _seconds(data.day[rows])),
      ("part", lambda: s.part[rows]),
      ("user_ids", lambda: s.users.ids),
      ("item_ids", lambda: s.items.ids),
  ]


def _seconds(day: np.ndarray) -> np.ndarray:
  out = day.astype(np.int64)
  out *= SECONDS_PER_DAY
  return out


def split_ratings(data: TrainingRatings, name: str, seed: int = 0
                  ) -> tuple[Ratings, np.ndarray]:
  """One split in memory: `Ratings` (timestamps in seconds) and int8 part (0/1/2)."""
  s = _split_rows(data, _get_split(name), seed)
  cols = {k: make() for k, make in _columns(data, s)}
  return _to_ratings(cols, source=f"{data.source} ({name})"), cols["part"]


def _to_ratings(cols: dict, source: str) -> Ratings:
  return Ratings(user=cols["user"], item=cols["item"], rating=cols["rating"],
                 timestamp=cols["timestamp"], user_ids=cols["user_ids"],
                 item_ids=cols["item_ids"], source=source)


def _get_split(name: str) -> TimeSplit:
  if name not in SPLITS:
    raise ValueError(f"unknown Netflix split {name!r}; expected one of {', '.join(SPLITS)}")
  return SPLITS[name]


def _write_npz(path: str, arrays: Sequence[tuple[str, Callable]]) -> None:
  """np.savez's layout (stored .npy members), built one array at a time.

  Members get a fixed date, so equal arrays give byte-identical files (np.savez
  stamps the current time).
  """
  with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED, allowZip64=True) as zf:
    for name, make in arrays:
      array = np.ascontiguousarray(make())
      info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
      info.external_attr = 0o644 << 16
      with zf.open(info, "w", force_zip64=True) as f:
        np.lib.format.write_array(f, array, allow_pickle=False)
      del array


def load_converted(split_dir) -> tuple[Ratings, np.ndarray]:
  """Reads `split_dir/ratings.npz` written by `convert`: (Ratings, int8 part).

  part is 0 train, 1 valid, 2 test per rating; timestamps are seconds since the
  epoch (midnight UTC of the rating date). Raises DataNotFoundError when the file is
  missing and DataFormatError naming it when it is truncated or not a converted split.
  """
  path = os.path.join(os.fspath(split_dir), "ratings.npz")
  try:
    f = errors.open_file(path)
  except DataNotFoundError:
    raise DataNotFoundError(f"{path}: no converted Netflix split; make one with `python "
                            "-m autorec_jax.data.netflix --input=training_set.tar "
                            "--output=DIR` and pass DIR/<split>") from None
  try:
    with f, np.load(f, allow_pickle=False) as z:
      missing = [k for k in NPZ_ARRAYS if k not in z.files]
      cols = {k: z[k] for k in NPZ_ARRAYS if k in z.files}
  except (zipfile.BadZipFile, OSError, EOFError, ValueError, KeyError) as e:
    raise DataFormatError(path, None, f"expected a complete .npz of a converted split, "
                          f"got a truncated or corrupt file ({e})") from None
  if missing:
    raise DataFormatError(path, None, f"expected arrays {', '.join(NPZ_ARRAYS)}, "
                          f"missing {', '.join(missing)}")
  for k, dtype in NPZ_ARRAYS.items():
    if cols[k].dtype != dtype or cols[k].ndim != 1:
      raise DataFormatError(path, None, f"expected {k} as 1-D {np.dtype(dtype)}, got "
                            f"{cols[k].ndim}-D {cols[k].dtype}")
  n = len(cols["rating"])
  if any(len(cols[k]) != n for k in ("user", "item", "timestamp", "part")):
    raise DataFormatError(path, None, "expected user, item, rating, timestamp and part "
                          "of one length")
  for k, ids in (("user", "user_ids"), ("item", "item_ids")):
    if n and (cols[k].min() < 0 or cols[k].max() >= len(cols[ids])):
      raise DataFormatError(path, None, f"expected {k} indices in [0, {len(cols[ids])}), "
                            f"got {cols[k].min()}..{cols[k].max()}")
  if n and (cols["part"].min() < 0 or cols["part"].max() > 2):
    raise DataFormatError(path, None, "expected part values 0 (train), 1 (valid), 2 (test)")
  return _to_ratings(cols, source=path), cols["part"]


def _check_output(output: str, overwrite: bool, input_path: str) -> None:
  if os.path.exists(output) and not os.path.isdir(output):
    raise FileExistsError(f"{output}: exists and is not a folder")
  if os.path.isdir(output) and os.listdir(output) and not overwrite:
    raise FileExistsError(f"{output}: folder is not empty; pass --overwrite to replace it")
  inside = os.path.commonpath([os.path.realpath(input_path), os.path.realpath(output)])
  if inside == os.path.realpath(output):
    raise ValueError(f"{output}: the input {input_path} lies inside the output folder, "
                     "which would be replaced; pick another output folder")


def _readme(input_path: str, data: TrainingRatings, seed: int, report: dict) -> str:
  lines = [
      "Netflix Prize training set converted by autorec_jax.data.netflix.",
      f"input: {input_path}",
      f"ratings read: {len(data):,}; dates {formats.day_to_date(data.day.min())}.."
      f"{formats.day_to_date(data.day.max())}",
      f"seed: {seed} (valid/test halves drawn by np.random.default_rng([seed, "
      "split_index]))", "",
      "Splits (Kuchaiev & Ginsburg 2017, Table 1; both ends of every window inclusive).",
      "Test-window ratings whose customer or movie has no train rating in the split are",
      "dropped; each other one is valid or test with probability 1/2.", ""]
  for name, r in report.items():
    split, st = SPLITS[name], r["stats"]
    lines.append(f"{name} (split_index {split.index}): train {split.train[0]}.."
                 f"{split.train[1]}: {st['train']['ratings']:,} ratings, "
                 f"{st['train']['users']:,} users, {st['train']['items']:,} items; test "
                 f"window {split.test[0]}..{split.test[1]}: {r['window']:,} ratings, "
                 f"{r['window'] - st['valid']['ratings'] - st['test']['ratings']:,} "
                 f"dropped, {st['valid']['ratings']:,} valid, {st['test']['ratings']:,} "
                 "test")
  lines += [
      "", "Files: <split>/ratings.npz (numpy .npz, uncompressed) with arrays",
      "  user int32, item int32: dense indices, numbered in sorted original-id order",
      "    over the split's train customers / movies;",
      "  rating float32 (1..5); timestamp int64: seconds since 1970-01-01 UTC of the",
      "    rating date (midnight); part int8: 0 train, 1 valid, 2 test;",
      "  user_ids int64 (CustomerID of each user index), item_ids int64 (MovieID).",
      "Rows are ordered by MovieID, then as in the input file.",
      "stats.json: users, items and ratings of each split's train, valid and test parts.",
      "Load one with autorec_jax.data.netflix.load_converted('<this folder>/<split>').", ""]
  return "\n".join(lines)


def convert(input_path, output, *, seed: int = 0, splits: Sequence[str] = tuple(SPLITS),
            overwrite: bool = False, workers: int = 1,
            log: Callable[[str], None] | None = None) -> dict:
  """Converts a Netflix training set into `output/<split>/ratings.npz` and stats.

  Everything is written into a temporary sibling folder and renamed into place at
  the end, so `output` is either the old contents or complete. Refuses a non-empty
  `output` unless `overwrite`. Splits are written (and keyed in stats) in the order
  full, 3m, 6m, 1y whatever the order of `splits`. Returns the stats.json dict.
  """
  input_path, output = os.path.abspath(input_path), os.path.abspath(output)
  splits = sorted(set(splits), key=lambda name: _get_split(name).index)
  if not splits:
    raise ValueError("expected at least one split")
  _check_output(output, overwrite, input_path)
  log = log or (lambda message: None)
  start = time.perf_counter()
  data = read_training_set(input_path, workers=workers, log=log)
  if not len(data):
    raise DataFormatError(input_path, None, "expected ratings, got only MovieID: lines")
  log(f"read {len(data):,} ratings in {time.perf_counter() - start:.1f}s")
  parent = os.path.dirname(output)
  os.makedirs(parent, exist_ok=True)
  tmp = tempfile.mkdtemp(prefix=f".{os.path.basename(output)}.tmp-", dir=parent)
  try:
    report = {}
    for name in splits:
      s = _split_rows(data, SPLITS[name], seed)
      os.mkdir(os.path.join(tmp, name))
      _write_npz(os.path.join(tmp, name, "ratings.npz"), _columns(data, s))
      report[name] = {"stats": s.stats, "window": s.window}
      del s
      log(f"wrote split {name} at {time.perf_counter() - start:.1f}s: "
          f"{json.dumps(report[name]['stats'])}")
    stats = {name: r["stats"] for name, r in report.items()}
    with open(os.path.join(tmp, "stats.json"), "w") as f:
      json.dump(stats, f, indent=2)
      f.write("\n")
    with open(os.path.join(tmp, "README.txt"), "w") as f:
      f.write(_readme(input_path, data, seed, report))
    os.chmod(tmp, 0o755)
    _replace_dir(tmp, output)
  except BaseException:
    shutil.rmtree(tmp, ignore_errors=True)
    raise
  return stats


def _replace_dir(tmp: str, output: str) -> None:
  """Renames `tmp` to `output`; an existing `output` is moved aside, then removed."""
  if not os.path.exists(output):
    os.rename(tmp, output)
    return
  old = f"{tmp}.old"
  os.rename(output, old)
  os.rename(tmp, output)
  shutil.rmtree(old)


def main(argv: Sequence[str] | None = None) -> int:
  parser = argparse.ArgumentParser(
      prog="python -m autorec_jax.data.netflix",
      description="Converts the Netflix Prize training set into the time splits full, "
      "3m, 6m and 1y of Kuchaiev & Ginsburg (2017): DIR/<split>/ratings.npz, "
      "DIR/stats.json and DIR/README.txt.")
  parser.add_argument("--input", required=True, help="training_set/ folder of "
                      "mv_NNNNNNN.txt files, training_set.tar (read as a stream, not "
                      "unpacked), a combined_data_N.txt file, or a folder holding them")
  parser.add_argument("--output", required=True, help="folder to create (must be empty "
                      "or absent unless --overwrite)")
  parser.add_argument("--seed", type=int, default=0, help="seed of the valid/test halving "
                      "(default 0); the same seed gives byte-identical files")
  parser.add_argument("--splits", default=",".join(SPLITS), help="comma-separated splits "
                      f"to write (default {','.join(SPLITS)})")
  parser.add_argument("--overwrite", action="store_true",
                      help="replace a non-empty output folder")
  parser.add_argument("--workers", type=int, default=1, help="processes parsing the input "
                      "(default 1)")
  parser.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
  args = parser.parse_args(argv)
  log = None if args.quiet else (lambda m: print(m, file=sys.stderr, flush=True))
  try:
    stats = convert(args.input, args.output, seed=args.seed,
                    splits=[s.strip() for s in args.splits.split(",") if s.strip()],
                    overwrite=args.overwrite, workers=args.workers, log=log)
  except (DataError, FileExistsError, ValueError) as e:
    print(f"error: {e}", file=sys.stderr)
    return 1
  print(json.dumps(stats))
  return 0


if __name__ == "__main__":
  sys.exit(main())
