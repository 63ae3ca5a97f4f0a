"""Settings whose default depends on the data: the autoencoders' normalisation and
the factorization baselines' regularisation.

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


def describe(choice: ScaleChoice) -> str:
  """For the console: `scaled to [-1, 1]` or `as they are`."""
  return "scaled to [-1, 1]" if choice.on else "as they are"


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
