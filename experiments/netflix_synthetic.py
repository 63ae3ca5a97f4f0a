"""Writes a synthetic Netflix Prize training set with the real one's shape.

The real data cannot be copied here, so converter tests and benchmarks run on this:
17,770 mv_NNNNNNN.txt files (or fewer with --movies) whose sizes are skewed like the
real ones (lognormal popularity, a few movies with a large share), ~480K customer ids
drawn with gaps from 1..2,649,429 (also activity-skewed), dates from 1999-11-11 to
2005-12-31 with density growing over time (more ratings in later years), ratings 1-5
around a per-movie mean. Each customer rates a movie at most once.

Example (10M ratings, as a folder, a tar or Kaggle combined files):

  python experiments/netflix_synthetic.py --output=/tmp/nf10m --ratings=10000000
  python experiments/netflix_synthetic.py --output=/tmp/nf10m_tar --ratings=10000000 \
      --format=tar

The text is built with numpy byte scatters (no Python string per rating), so 10M
ratings take seconds. Import `write_tree` to use it from Python (tests do).
"""

from __future__ import annotations

import argparse
import datetime
import io
import os
import sys
import tarfile

import numpy as np

NUM_MOVIES = 17770
NUM_CUSTOMERS = 480189
MAX_CUSTOMER_ID = 2649429
FIRST_DATE, LAST_DATE = "1999-11-11", "2005-12-31"
FORMATS = ("dir", "tar", "combined")


def _day(date: str) -> int:
  return (datetime.date.fromisoformat(date) - datetime.date(1970, 1, 1)).days


def synthesize(num_ratings: int, *, num_movies: int = NUM_MOVIES,
               num_customers: int | None = None, seed: int = 0) -> dict:
  """Ratings as arrays ordered by movie: movie, customer (int64), rating, day (int32).

  The count is about `num_ratings` (a movie cannot have more ratings than there are
  customers, so the largest may be capped); every movie has at least one rating.
  """
  rng = np.random.default_rng(seed)
  if num_customers is None:
    num_customers = int(min(NUM_CUSTOMERS, max(10, num_ratings // 4)))
  customer_ids = np.sort(rng.choice(MAX_CUSTOMER_ID, num_customers, replace=False)) + 1
  popularity = rng.lognormal(0.0, 1.6, num_movies)
  counts = rng.multinomial(max(num_ratings - num_movies, 0), popularity / popularity.sum())
  counts = np.minimum(counts + 1, num_customers)
  activity = rng.lognormal(0.0, 1.0, num_customers)
  cdf = np.cumsum(activity / activity.sum())
  users = []
  for c in counts.tolist():
    users.append(_distinct_customers(rng, c, cdf, activity))
  customer = customer_ids[np.concatenate(users)]
  n = len(customer)
  movie = np.repeat(np.arange(1, num_movies + 1, dtype=np.int32), counts)
  first, last = _day(FIRST_DATE), _day(LAST_DATE)
  # Density grows like t^2 over the period: u^(1/3) of a uniform u.
  day = (first + np.floor((last - first + 1) * rng.random(n) ** (1 / 3))).astype(np.int32)
  mean = rng.normal(3.6, 0.5, num_movies)
  rating = np.clip(np.rint(mean[movie - 1] + rng.normal(0.0, 1.0, n)), 1, 5).astype(np.int8)
  return {"movie": movie, "customer": customer, "rating": rating, "day": day}


def _distinct_customers(rng, count: int, cdf: np.ndarray, weight: np.ndarray) -> np.ndarray:
  """`count` distinct customer indices drawn by weight, in random order."""
  draws = np.searchsorted(cdf, rng.random(int(count * 1.3) + 8) * cdf[-1])
  draws = np.minimum(draws, len(cdf) - 1)
  _, first = np.unique(draws, return_index=True)
  if len(first) >= count:
    return draws[np.sort(first)[:count]]
  # Efraimidis-Spirakis: the largest log(u)/w keys are a weighted sample without
  # replacement (only the few movies rated by a large share of customers get here).
  keys = np.log(rng.random(len(weight))) / weight
  top = np.argpartition(-keys, count - 1)[:count]
  return rng.permutation(top)


def to_text(data: dict) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
  """All movies' mv_ file text in one uint8 buffer, byte offsets, and the MovieIDs.

  The k-th movie's file is buf[offsets[k]:offsets[k + 1]]; `data` is ordered by movie.
  """
  movie, customer = data["movie"], data["customer"].astype(np.int64)
  movies, first_row, counts = np.unique(movie, return_index=True, return_counts=True)
  ndig_c = _num_digits(customer)
  ndig_m = _num_digits(movies.astype(np.int64))
  line_len = ndig_c + 14  # digits + ",R,YYYY-MM-DD\n"
  head_len = ndig_m + 2  # digits + ":\n"
  # Each movie's header precedes its lines: line k of all lines sits after k lines and
  # the headers of its own and earlier movies.
  block = np.repeat(np.arange(len(movies)), counts)
  ends_lines = np.cumsum(line_len) + np.cumsum(head_len)[block] - 1  # '\n' positions
  total = int(line_len.sum() + head_len.sum())
  buf = np.zeros(total, np.uint8)
  buf[ends_lines] = 10
  first, last = _day(FIRST_DATE), _day(LAST_DATE)
  table = np.frombuffer("".join(
      (datetime.date(1970, 1, 1) + datetime.timedelta(days=d)).isoformat()
      for d in range(first, last + 1)).encode(), np.uint8).reshape(-1, 10)
  buf[ends_lines[:, None] + np.arange(-10, 0)] = table[data["day"] - first]
  buf[ends_lines - 11] = 44
  buf[ends_lines - 12] = 48 + data["rating"].astype(np.uint8)
  buf[ends_lines - 13] = 44
  _scatter_digits(buf, ends_lines - 13, customer, ndig_c)
  block_bytes = head_len + np.add.reduceat(line_len, first_row)
  offsets = np.concatenate(([0], np.cumsum(block_bytes)))
  head_end = offsets[:-1] + head_len - 1
  buf[head_end] = 10
  buf[head_end - 1] = 58
  _scatter_digits(buf, head_end - 1, movies.astype(np.int64), ndig_m)
  return buf, offsets, movies


def _num_digits(x: np.ndarray) -> np.ndarray:
  n = np.ones(len(x), np.int64)
  for k in range(1, 19):
    n += x >= 10**k
  return n


def _scatter_digits(buf, end, value, ndig):
  """Writes `value` in decimal into buf[end - ndig:end] for every row."""
  v = value.copy()
  for k in range(1, int(ndig.max()) + 1):
    has = ndig >= k
    buf[(end - k)[has]] = 48 + (v[has] % 10).astype(np.uint8)
    v //= 10


def write_tree(output, num_ratings: int, *, num_movies: int = NUM_MOVIES,
               num_customers: int | None = None, seed: int = 0,
               fmt: str = "dir") -> tuple[str, int]:
  """Writes a synthetic training set under `output`; returns (input path, ratings).

  fmt "dir": output/training_set/mv_NNNNNNN.txt; "tar": output/training_set.tar
  (members training_set/mv_NNNNNNN.txt, like the original); "combined":
  output/combined_data_{1..4}.txt (Kaggle's layout: consecutive movie ranges).
  """
  if fmt not in FORMATS:
    raise ValueError(f"fmt must be one of {FORMATS}, got {fmt!r}")
  data = synthesize(num_ratings, num_movies=num_movies, num_customers=num_customers,
                    seed=seed)
  buf, offsets, movies = to_text(data)
  os.makedirs(output, exist_ok=True)
  raw = buf.tobytes()
  del buf
  files = [(f"mv_{m:07d}.txt", offsets[k], offsets[k + 1])
           for k, m in enumerate(movies.tolist())]
  if fmt == "dir":
    folder = os.path.join(output, "training_set")
    os.makedirs(folder, exist_ok=True)
    for name, i, j in files:
      with open(os.path.join(folder, name), "wb") as f:
        f.write(raw[i:j])
    return folder, len(data["rating"])
  if fmt == "tar":
    path = os.path.join(output, "training_set.tar")
    with tarfile.open(path, "w", format=tarfile.GNU_FORMAT) as tar:
      info = tarfile.TarInfo("training_set")
      info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o755, 1136073600
      tar.addfile(info)
      for name, i, j in files:
        info = tarfile.TarInfo(f"training_set/{name}")
        info.size, info.mode, info.mtime = int(j - i), 0o644, 1136073600
        tar.addfile(info, io.BytesIO(raw[i:j]))
    return path, len(data["rating"])
  parts = np.array_split(np.arange(len(files)), 4)
  for k, part in enumerate(parts, start=1):
    if len(part):
      with open(os.path.join(output, f"combined_data_{k}.txt"), "wb") as f:
        f.write(raw[offsets[part[0]]:offsets[part[-1] + 1]])
  return os.fspath(output), len(data["rating"])


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--output", required=True, help="folder to write into")
  parser.add_argument("--ratings", type=int, default=10_000_000,
                      help="about how many ratings (default 10,000,000)")
  parser.add_argument("--movies", type=int, default=NUM_MOVIES,
                      help=f"number of movies (default {NUM_MOVIES:,})")
  parser.add_argument("--customers", type=int, default=None,
                      help=f"number of customers (default min({NUM_CUSTOMERS:,}, "
                      "ratings / 4))")
  parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
  parser.add_argument("--format", choices=FORMATS, default="dir",
                      help="dir: training_set/ of mv_ files; tar: training_set.tar; "
                      "combined: Kaggle's combined_data_1..4.txt")
  args = parser.parse_args(argv)
  path, n = write_tree(args.output, args.ratings, num_movies=args.movies,
                       num_customers=args.customers, seed=args.seed, fmt=args.format)
  print(f"wrote {n:,} ratings of {args.movies:,} movies to {path}")


if __name__ == "__main__":
  sys.exit(main())
