"""Settings whose default depends on the data: the autoencoders' normalisation, row
means and weight decay, and the factorization baselines' regularisation.

The default hyperparameters (learning rates, weight decay, initialisation) were tuned
on MovieLens' 1..5 ratings fed to the model as they are, and mapping those to
[-1, 1] costs accuracy (MovieLens-1M's default model: test RMSE 0.8312 raw, 0.8712
scaled). On a scale of another size or place the raw ratings pose another problem to
the same settings (raw 1..100 ratings make the data term ~600x the weight decay's;
Jester's -10..10 rows drive sigmoid units towards saturation), and [-1, 1] is the
robust choice: on Jester it beats the raw ratings (4.3968 against 4.4564;
experiments/results/data_defaults.md). So `preprocess.scale` unset keeps a 1..5-like
scale as it is and maps any other to [-1, 1].
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

# "1..5-like": a scale that starts at 0 or above and spans 3 to 6 units (1..5,
# 0.5..5, 0..5, 1..7), so raw ratings are the numbers the defaults were tuned on.
_LIKE_MIN_WIDTH, _LIKE_MAX_WIDTH = 3.0, 6.0


@dataclasses.dataclass(frozen=True)
class ScaleChoice:
  """Whether the model sees ratings mapped to [-1, 1], and why."""

  on: bool
  why: str


def choose_scale(setting: bool | None, rating_scale: tuple[float, float]) -> ScaleChoice:
  """`preprocess.scale` as given, or for None (unset) by the rating scale's shape."""
  if setting is not None:
    return ScaleChoice(bool(setting), f"preprocess.scale={bool(setting)}")
  lo, hi = (float(v) for v in rating_scale)
  span = f"{lo:g}..{hi:g}"
  if lo >= 0 and _LIKE_MIN_WIDTH <= hi - lo <= _LIKE_MAX_WIDTH:
    return ScaleChoice(False, f"preprocess.scale unset: {span} is 1..5-like, as it is")
  return ScaleChoice(True, f"preprocess.scale unset: {span} is not 1..5-like, scaled to "
                           "[-1, 1]")


def describe(choice: ScaleChoice, bias: str = "none") -> str:
  """For the console: `scaled to [-1, 1]` or `as they are`, and `row means removed`."""
  units = "scaled to [-1, 1]" if choice.on else "as they are"
  return units + (", row means removed" if bias == "row" else "")


def scale_record(choice: ScaleChoice, rating_scale: tuple[float, float]) -> dict:
  """The results.json entries of the rating scale and the normalisation in use."""
  return {"rating_scale": [float(rating_scale[0]), float(rating_scale[1])],
          "preprocess/scale": choice.on, "preprocess/scale_why": choice.why}


# model.reg unset: lambda = _REG_PER_KIND[kind] * sqrt(rank / n), n the smaller of the
# train part's mean ratings per user and per item. Fitted on MovieLens-1M (n ~ 142:
# 0.030 for ALS-WR at rank 20, the paper's value, and for SVD at rank 30) and on
# 100K-rating samples of it with n ~ 26 and ~ 14, where the best lambda on
# validation was 2-3x larger and the 1-M values overfit (ALS-WR's validation RMSE
# best at iteration 1): factors estimated from fewer ratings need more shrinkage.
_REG_PER_KIND = {"als": 0.08, "svd": 0.065}


@dataclasses.dataclass(frozen=True)
class RegChoice:
  """The factorization baselines' lambda, and why."""

  value: float
  why: str


def choose_reg(setting: float | None, *, kind: str, rank: int, num_ratings: int,
               num_users: int, num_items: int) -> RegChoice:
  """`model.reg` as given, or for None (unset) scaled with the ratings per user and
  per item of the train part (`num_users`, `num_items`: those with a train rating)."""
  if setting is not None:
    return RegChoice(float(setting), f"model.reg={float(setting):g}")
  per_user = num_ratings / max(num_users, 1)
  per_item = num_ratings / max(num_items, 1)
  n = max(min(per_user, per_item), 1.0)
  value = _REG_PER_KIND[kind] * (rank / n) ** 0.5
  return RegChoice(value, f"auto: {_REG_PER_KIND[kind]:g} * sqrt(rank {rank} / "
                          f"{n:.1f} ratings per {'user' if per_user <= per_item else 'item'})")


# preprocess.bias=auto and optim.weight_decay unset (the item-based default) look at
# how many train ratings stand behind each weight: the autoencoder's row codes are
# read from a row's ratings and its column weights fitted from a column's, so the
# measure is n = ratings / sqrt(users * items), the geometric mean of the ratings per
# user and per item (the same for both orientations). Where n is small, raw ratings
# fail twice: weight decay shrinks a prediction towards 0, off the scale, and the
# weights fitted from a handful of ratings overfit, so the model lands behind a
# plain mean. Removing each row's mean makes the decay shrink towards the row's mean
# instead, and then a strong decay pays. Measured on validation
# (experiments/results/data_defaults.md): the row mean with decay 1e-2 wins where n
# is 13-29 (a real data set and samples of MovieLens-1M), with ratings as they are
# or scaled to [-1, 1] alike; raw ratings with decay 3e-4 win where n is 38 and above
# (samples, another real data set, MovieLens-1M at 181), and a strong decay there
# costs. The threshold sits between. Ratings scaled to [-1, 1] (a scale that is not
# 1..5-like) have their row means removed too, dense or not: 0 is then a rating in
# the middle of the scale, no longer apart from the missing entries, and the row
# mean is the better place to start (Jester: 4.3447 against 4.3969; MovieLens-1M
# scaled: 0.8660 against 0.8712).
SPARSE_BELOW = 32.0
DENSE_WEIGHT_DECAY = 3e-4  # shrinks towards 0 or each row's mean: it must stay small
SPARSE_WEIGHT_DECAY = 1e-2  # sparse, row means removed: shrinks towards each row's mean


@dataclasses.dataclass(frozen=True)
class SparsityChoice:
  """The autoencoder's row-mean removal and weight decay in use, and why."""

  bias: str
  weight_decay: float
  why: str


def ratings_per_weight(num_ratings: int, num_users: int, num_items: int) -> float:
  """ratings / sqrt(users * items): the geometric mean of ratings per user and item."""
  return num_ratings / max(float(num_users) * float(num_items), 1.0) ** 0.5


def choose_sparsity(bias: str, weight_decay: float | None, *, scaled: bool,
                    num_ratings: int, num_users: int, num_items: int) -> SparsityChoice:
  """`preprocess.bias` and `optim.weight_decay` as given, or for "auto" / None by
  the train part's ratings per user and item (`num_users`, `num_items`: those with a
  train rating) and whether the ratings are `scaled` to [-1, 1]."""
  n = ratings_per_weight(num_ratings, num_users, num_items)
  sparse = n < SPARSE_BELOW
  density = (f"{n:.1f} train ratings per user and item (geometric mean) "
             f"{'<' if sparse else '>='} {SPARSE_BELOW:g}")
  reasons = []
  if bias == "auto":
    bias = "row" if sparse or scaled else "none"
    reasons.append(f"preprocess.bias=auto: {bias} ({density}"
                   f"{', ratings scaled' if scaled else ''})")
  if weight_decay is None:
    strong = sparse and bias == "row"
    weight_decay = SPARSE_WEIGHT_DECAY if strong else DENSE_WEIGHT_DECAY
    detail = ("sparse, row means removed" if strong else "sparse, raw rows" if sparse
              else f"{n:.1f} train ratings per user and item >= {SPARSE_BELOW:g}")
    reasons.append(f"optim.weight_decay unset: {weight_decay:g} ({detail})")
  return SparsityChoice(bias, float(weight_decay), "; ".join(reasons) or "as set")


def resolve_sparsity(cfg, train, rating_scale: tuple[float, float]
                     ) -> tuple[Any, SparsityChoice]:
  """`cfg` with `preprocess.bias` and `optim.weight_decay` made concrete for the
  train part `train` (a Ratings) on `rating_scale`, and the choice (for the console
  and results)."""
  scaled = choose_scale(cfg.preprocess.scale, rating_scale).on
  choice = choose_sparsity(cfg.preprocess.bias, cfg.optim.weight_decay, scaled=scaled,
                           num_ratings=len(train.user),
                           num_users=len(np.unique(train.user)),
                           num_items=len(np.unique(train.item)))
  out = cfg.copy_and_resolve_references()
  with out.unlocked():
    out.preprocess.bias = choice.bias
    out.optim.weight_decay = choice.weight_decay
  return out, choice


def sparsity_record(choice: SparsityChoice) -> dict:
  """The results.json entries of the row-mean removal and weight decay in use."""
  return {"preprocess/bias": choice.bias, "optim/weight_decay": choice.weight_decay,
          "preprocess/bias_why": choice.why}
