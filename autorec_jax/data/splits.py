"""Train / validation / test splits as sorted index arrays into one `Ratings`.

Splits are by rating (the AutoRec protocol: random 90/10, or k folds), seeded and pure
numpy. Every split function draws from `np.random.default_rng([seed, stream])` with its
own fixed stream number, so the test part depends only on (seed, test settings) and
carving validation out of train never moves a rating into or out of the test set.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from autorec_jax.data.types import Ratings

# Independent random streams derived from one seed (see module docstring).
_TEST_STREAM = 0
_VALID_STREAM = 1


@dataclasses.dataclass(frozen=True, eq=False)
class Split:
  """Disjoint positions of the train, validation and test ratings.

  Attributes:
    train: int64[N_train] sorted positions into the `Ratings` the split was made for.
    valid: int64[N_valid] sorted positions (empty when no validation was carved).
    test: int64[N_test] sorted positions.
  """

  train: np.ndarray
  valid: np.ndarray
  test: np.ndarray

  def summary(self, ratings: Ratings) -> dict:
    """Sizes of each part and, for valid and test, how much of it is cold.

    A user or item is cold when it has no train rating; a cold rating is one whose
    user or item is cold (the model cannot have learnt anything specific for it).

    Returns:
      {"train": {"ratings", "users", "items"}, "valid": {..., "cold_users",
      "cold_items", "cold_ratings"}, "test": {...}}, all Python ints; "users" and
      "items" count the distinct users and items present in that part.
    """
    for name in ("train", "valid", "test"):
      part = getattr(self, name)
      if len(part) and (part.min() < 0 or part.max() >= ratings.num_ratings):
        raise ValueError(f"split part {name!r} indexes past the {ratings.num_ratings} "
                         "ratings it was given: was it made for another data set?")
    seen_user = np.zeros(ratings.num_users, dtype=bool)
    seen_item = np.zeros(ratings.num_items, dtype=bool)
    seen_user[ratings.user[self.train]] = True
    seen_item[ratings.item[self.train]] = True
    out = {"train": _part_counts(ratings, self.train)}
    for name in ("valid", "test"):
      part = getattr(self, name)
      user, item = ratings.user[part], ratings.item[part]
      counts = _part_counts(ratings, part)
      counts["cold_users"] = int(np.count_nonzero(~seen_user[np.unique(user)]))
      counts["cold_items"] = int(np.count_nonzero(~seen_item[np.unique(item)]))
      counts["cold_ratings"] = int(np.count_nonzero(~seen_user[user] | ~seen_item[item]))
      out[name] = counts
    return out


def _part_counts(ratings: Ratings, part: np.ndarray) -> dict:
  return {"ratings": int(len(part)),
          "users": int(len(np.unique(ratings.user[part]))),
          "items": int(len(np.unique(ratings.item[part])))}


def _check_count(num_ratings) -> int:
  if isinstance(num_ratings, bool) or not isinstance(num_ratings, (int, np.integer)):
    raise ValueError(f"num_ratings must be an int, got {num_ratings!r}")
  if num_ratings < 0:
    raise ValueError(f"num_ratings must be >= 0, got {num_ratings}")
  return int(num_ratings)


def _check_fraction(name: str, value) -> float:
  value = float(value)
  if not 0.0 <= value < 1.0:
    raise ValueError(f"{name} must be in [0, 1), got {value}")
  return value


def _check_seed(seed) -> int:
  if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
    raise ValueError(f"seed must be a non-negative int, got {seed!r}")
  return int(seed)


def _take_fraction(index: np.ndarray, fraction: float, rng: np.random.Generator):
  """Splits `index` into (rest, taken) with round(fraction * len) taken at random."""
  num_taken = int(round(fraction * len(index)))
  perm = rng.permutation(len(index))
  taken = np.sort(index[perm[:num_taken]])
  rest = np.sort(index[perm[num_taken:]])
  return rest, taken


def random_split(num_ratings: int, test_fraction: float,
                 seed: int) -> tuple[np.ndarray, np.ndarray]:
  """(train_idx, test_idx): round(test_fraction * num_ratings) ratings at random to test."""
  num_ratings = _check_count(num_ratings)
  test_fraction = _check_fraction("test_fraction", test_fraction)
  rng = np.random.default_rng([_check_seed(seed), _TEST_STREAM])
  return _take_fraction(np.arange(num_ratings, dtype=np.int64), test_fraction, rng)


def kfold_split(num_ratings: int, num_folds: int, fold: int,
                seed: int) -> tuple[np.ndarray, np.ndarray]:
  """(train_idx, test_idx) where test is fold `fold` of one seeded permutation.

  The folds of one seed are disjoint, cover every rating, and differ in size by at
  most one, so running fold = 0..num_folds-1 is a proper k-fold cross-validation.
  """
  num_ratings = _check_count(num_ratings)
  if isinstance(num_folds, bool) or not isinstance(num_folds, (int, np.integer)):
    raise ValueError(f"num_folds must be an int, got {num_folds!r}")
  if num_folds < 2:
    raise ValueError(f"num_folds must be >= 2 for a k-fold split, got {num_folds}")
  if num_folds > num_ratings:
    raise ValueError(f"num_folds ({num_folds}) exceeds the number of ratings "
                     f"({num_ratings}): some folds would be empty")
  if isinstance(fold, bool) or not isinstance(fold, (int, np.integer)):
    raise ValueError(f"fold must be an int, got {fold!r}")
  if not 0 <= fold < num_folds:
    raise ValueError(f"fold must be in [0, {num_folds}), got {fold}")
  rng = np.random.default_rng([_check_seed(seed), _TEST_STREAM])
  perm = rng.permutation(num_ratings).astype(np.int64)
  bounds = np.linspace(0, num_ratings, num_folds + 1).round().astype(np.int64)
  in_test = np.zeros(num_ratings, dtype=bool)
  in_test[perm[bounds[fold]:bounds[fold + 1]]] = True
  return np.flatnonzero(~in_test).astype(np.int64), np.flatnonzero(in_test).astype(np.int64)


def carve_validation(train_idx: np.ndarray, valid_fraction: float,
                     seed: int) -> tuple[np.ndarray, np.ndarray]:
  """(train_idx, valid_idx): round(valid_fraction * len(train_idx)) moved to valid.

  Uses its own random stream of `seed`, so it is independent of how the test part
  was drawn; valid_fraction 0 gives an empty validation part and train unchanged.
  """
  train_idx = np.asarray(train_idx)
  if train_idx.ndim != 1 or not np.issubdtype(train_idx.dtype, np.integer):
    raise ValueError("train_idx must be a 1-D integer array of rating positions, got "
                     f"{train_idx.dtype}{list(train_idx.shape)}")
  valid_fraction = _check_fraction("valid_fraction", valid_fraction)
  rng = np.random.default_rng([_check_seed(seed), _VALID_STREAM])
  return _take_fraction(train_idx.astype(np.int64), valid_fraction, rng)


def _check_mask(name: str, mask, num_ratings: int) -> np.ndarray:
  mask = np.asarray(mask)
  if mask.dtype != bool or mask.shape != (num_ratings,):
    raise ValueError(f"{name} must be a bool mask with one entry per rating "
                     f"(bool[{num_ratings}]), got {mask.dtype}{list(mask.shape)}")
  return mask


def make_split(num_ratings: int, *, test_fraction: float, num_folds: int, fold: int,
               valid_fraction: float, seed: int,
               predefined_test: np.ndarray | None = None,
               predefined_valid: np.ndarray | None = None) -> Split:
  """The split a run uses: test part first, then validation carved from train.

  The test part is, in order of precedence: `predefined_test` (a bool mask with one
  entry per rating, e.g. a dataset's official probe set); fold `fold` of a
  `num_folds`-fold split when num_folds >= 2; else a random `test_fraction` of the
  ratings. The validation part is `predefined_valid` when given (e.g. the Netflix
  time splits' valid half), else a `valid_fraction` of the remaining train ratings.
  """
  num_ratings = _check_count(num_ratings)
  test_fraction = _check_fraction("test_fraction", test_fraction)
  valid_fraction = _check_fraction("valid_fraction", valid_fraction)
  seed = _check_seed(seed)
  if isinstance(num_folds, bool) or not isinstance(num_folds, (int, np.integer)):
    raise ValueError(f"num_folds must be an int, got {num_folds!r}")
  if num_folds < 0:
    raise ValueError(f"num_folds must be >= 0 (0 or 1: no k-fold), got {num_folds}")
  if predefined_valid is not None:
    if predefined_test is None:
      raise ValueError("predefined_valid needs predefined_test")
    test_mask = _check_mask("predefined_test", predefined_test, num_ratings)
    valid_mask = _check_mask("predefined_valid", predefined_valid, num_ratings)
    if np.any(test_mask & valid_mask):
      raise ValueError("predefined_valid and predefined_test overlap")
    return Split(train=np.flatnonzero(~(test_mask | valid_mask)).astype(np.int64),
                 valid=np.flatnonzero(valid_mask).astype(np.int64),
                 test=np.flatnonzero(test_mask).astype(np.int64))
  if predefined_test is not None:
    mask = _check_mask("predefined_test", predefined_test, num_ratings)
    train, test = np.flatnonzero(~mask), np.flatnonzero(mask)
  elif num_folds >= 2:
    train, test = kfold_split(num_ratings, num_folds, fold, seed)
  else:
    if fold != 0:
      raise ValueError(f"fold={fold} needs num_folds >= 2, got num_folds={num_folds}")
    train, test = random_split(num_ratings, test_fraction, seed)
  train, valid = carve_validation(train, valid_fraction, seed)
  return Split(train=train.astype(np.int64), valid=valid.astype(np.int64),
               test=test.astype(np.int64))
