"""Exact id and index checks for serving: a bad id or index is refused, never bent.

Ids are the data set's own (integers for most data sets, strings for a CSV read with
string ids). An id matches only itself: for integer ids an int (numpy ints too), a
float equal to an integer (1001.0), or a string of ASCII digits with an optional
minus sign ("1001"); 1001.7, NaN, True/False, " 1001" and "1001.0" are not ids. For
string ids a string, or an int (as its decimal text). Truncating 1.7 to 1 would
answer for another user; refusing it names the value instead.

Indices (positions in a run's id maps) must be integers in [0, size): a negative
index would silently take a row from the end. A new user's ratings (`rating_pairs`)
name each item once, with a real number inside the rating scale.
"""

from __future__ import annotations

import math
import numbers
import re
from typing import Any, Callable, Iterable, Mapping

import numpy as np
import pandas as pd

_INT_TEXT = re.compile(r"-?[0-9]+")
_INT64 = (-2**63, 2**63 - 1)
# How many values an error message lists before `and N more`.
SHOWN = 5

UNKNOWN = -1  # positions(): an id of the right type that the run does not know
INVALID = -2  # positions(): a value that is not an id of this data set


def few(values: list, shown: int = SHOWN) -> str:
  """`[a, b, c]`, or `[a, b, c, d, e] and N more` for a long list."""
  more = f" and {len(values) - shown} more" if len(values) > shown else ""
  return f"[{', '.join(repr(v) if isinstance(v, str) else str(v) for v in values[:shown])}]" \
         f"{more}"


def as_sequence(values: Any, name: str) -> list | np.ndarray:
  """`values` as a list or 1-D array; ValueError for a scalar, a string or 2-D input."""
  if values is None or isinstance(values, (str, bytes, numbers.Number, np.generic)):
    raise ValueError(f"{name} must be a sequence (a list or 1-D array), got {values!r:.80}")
  if isinstance(values, (pd.Index, pd.Series)):
    values = values.to_numpy()
  if isinstance(values, np.ndarray):
    if values.ndim != 1:
      raise ValueError(f"{name} must be 1-D, got an array of shape {values.shape}")
    return values
  try:
    return list(values)
  except TypeError:
    raise ValueError(f"{name} must be a sequence (a list or 1-D array), got "
                     f"{values!r:.80}") from None


def _int_id(value) -> int | None:
  """An integer id's value, or None when `value` is not one."""
  if isinstance(value, (bool, np.bool_)):
    return None
  if isinstance(value, numbers.Integral):
    return int(value)
  if isinstance(value, (float, np.floating)):
    return int(value) if math.isfinite(value) and float(value).is_integer() else None
  if isinstance(value, str) and _INT_TEXT.fullmatch(value):
    return int(value)
  return None


def _str_id(value) -> str | None:
  if isinstance(value, str):
    return str(value)
  if isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_)):
    return str(int(value))
  return None


def positions(index: pd.Index, ids: Iterable[Any], name: str = "ids"
              ) -> tuple[np.ndarray, list | np.ndarray]:
  """(int64 positions of `ids` in `index`, the given values as a list or 1-D array).

  A position is UNKNOWN (-1) for an id of the right type the index lacks and INVALID
  (-2) for a value that is not an id of this index's type (see the module docstring).
  Arrays, and lists numpy reads as numbers (without bools), are checked at numpy's
  speed; other lists one value at a time.
  """
  given = as_sequence(ids, name)
  n = len(given)
  if n == 0:
    return np.zeros(0, np.int64), given
  invalid = np.zeros(n, bool)
  unknown = np.zeros(n, bool)
  if index.dtype.kind in "iu":
    arr = given if isinstance(given, np.ndarray) else _numeric_list(given)
    if arr is not None and arr.dtype.kind == "i":
      values = arr.astype(np.int64)
    elif arr is not None and arr.dtype.kind == "u":  # values above int64 are no id
      unknown = arr > np.uint64(_INT64[1])
      values = np.where(unknown, 0, arr).astype(np.int64)
    elif arr is not None and arr.dtype.kind == "f":
      invalid = ~np.isfinite(arr) | (arr != np.trunc(np.nan_to_num(arr)))
      unknown = ~invalid & ((arr < _INT64[0]) | (arr >= 2.0**63))
      values = np.where(invalid | unknown, 0, arr).astype(np.int64)
    else:
      parsed = [_int_id(v) for v in _items(given)]
      invalid = np.array([p is None for p in parsed])
      unknown = np.array([p is not None and not _INT64[0] <= p <= _INT64[1] for p in parsed])
      values = np.array([0 if bad or big else p
                         for p, bad, big in zip(parsed, invalid, unknown)], np.int64)
  else:
    parsed = [_str_id(v) for v in _items(given)]
    invalid = np.array([p is None for p in parsed])
    values = np.array(["" if p is None else p for p in parsed], object)
  pos = index.get_indexer(values).astype(np.int64)
  pos[unknown] = UNKNOWN
  pos[invalid] = INVALID
  return pos, given


def _items(given: list | np.ndarray) -> list:
  return given.tolist() if isinstance(given, np.ndarray) else given


def _numeric_list(values: list) -> np.ndarray | None:
  """A list of plain numbers as an int or float array; None when it holds anything
  else (a bool, a string, None: those are checked one by one)."""
  if not all(issubclass(t, numbers.Real) and not issubclass(t, (bool, np.bool_))
             for t in set(map(type, values))):
    return None
  try:
    arr = np.asarray(values)
  except (ValueError, TypeError, OverflowError):
    return None
  return arr if arr.ndim == 1 and arr.dtype.kind in "iuf" else None


def values_at(given: list | np.ndarray, where: np.ndarray) -> list:
  """The given values where `where` holds, as Python values (for messages)."""
  picked = np.flatnonzero(where)
  if isinstance(given, np.ndarray):
    return given[picked].tolist()
  return [given[i] for i in picked.tolist()]


def kind_of(index: pd.Index) -> str:
  return "integers" if index.dtype.kind in "iu" else "strings"


def check_indices(values: Any, size: int, what: str) -> np.ndarray:
  """int64 indices in [0, size); ValueError naming the first bad one (a float, a bool,
  a negative or too large index)."""
  seq = as_sequence(values, f"{what} indices")
  arr = seq if isinstance(seq, np.ndarray) else _numeric_list(seq)
  if arr is None:  # a list holding something other than plain numbers
    if any(np.ndim(v) != 0 for v in seq):
      raise ValueError(f"{what} indices must be 1-D, got {seq!r:.80}")
    arr = np.asarray(seq, object)
  if arr.size == 0:
    return np.zeros(0, np.int64)
  if arr.dtype.kind not in "iu":
    items = arr.tolist()
    bad = [v for v in items
           if isinstance(v, (bool, np.bool_)) or not isinstance(v, numbers.Integral)]
    if bad:
      raise ValueError(f"{what} indices must be integers, got {few(bad)}")
    big = [v for v in items if not _INT64[0] <= int(v) <= _INT64[1]]
    if big:
      raise ValueError(f"{what} indices {few(big)} are out of range [0, {size})")
    arr = np.array([int(v) for v in items], np.int64)
  out = (arr < 0) | (arr >= size)
  if np.any(out):
    raise ValueError(f"{what} indices {few(arr[out].tolist())} are out of range [0, {size})")
  return arr.astype(np.int64)


def rating_pairs(ratings, item_index: Callable[[list], np.ndarray],
                 rating_scale: tuple[float, float]) -> tuple[np.ndarray, np.ndarray]:
  """(item indices, float32 ratings) of a new user's ratings, checked: a dict or pandas
  Series {item id: rating}, (item id, rating) pairs or an N x 2 array; known items
  (`item_index` raises for others), each given once; ratings real numbers (not bools
  or strings) inside `rating_scale`. ValueError naming the first bad pair otherwise."""
  if isinstance(ratings, (Mapping, pd.Series)):
    pairs = list(ratings.items())
  elif isinstance(ratings, np.ndarray) and ratings.ndim == 2 and ratings.shape[1] == 2:
    pairs = [tuple(row) for row in ratings.tolist()]
  else:
    pairs = list(as_sequence(ratings, "ratings"))
  if not pairs:
    raise ValueError("fold_in needs at least one (item id, rating) pair")
  for pair in pairs:
    if isinstance(pair, (str, bytes)) or not hasattr(pair, "__len__") or len(pair) != 2:
      raise ValueError(f"fold_in takes (item id, rating) pairs or a {{item id: rating}} "
                       f"dict, got {pair!r:.80}")
  items = item_index([p[0] for p in pairs])
  seen = set()
  for (item_id, _), i in zip(pairs, items.tolist()):
    if i in seen:
      raise ValueError(f"fold_in got item {item_id!r} more than once (a user rates an item "
                       "once)")
    seen.add(i)
  lo, hi = rating_scale
  for item_id, rating in pairs:
    if isinstance(rating, (bool, np.bool_)) or not isinstance(rating, numbers.Real):
      raise ValueError(f"fold_in: the rating of item {item_id!r} must be a number, got "
                       f"{rating!r:.40}")
    if not (math.isfinite(rating) and lo <= rating <= hi):
      raise ValueError(f"fold_in: the rating {rating!r} of item {item_id!r} is outside the "
                       f"rating scale [{lo:g}, {hi:g}]")
  return items, np.asarray([float(p[1]) for p in pairs], np.float32)
