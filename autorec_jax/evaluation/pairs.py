"""Predicted ratings of (user, item) pairs from matrix-factorization factors.

The factorization baselines' counterpart of the autoencoders' evaluation: a pair
whose user and item both have train ratings gets the model's prediction, any other
the `rmse.TrainStats` fallback, on the rating scale (clipped when asked).
"""

from __future__ import annotations

import jax
import numpy as np

from autorec_jax.data.types import Ratings
from autorec_jax.evaluation import rmse as evaluate
from autorec_jax.models import factorization as fz

_PREDICT_CHUNK = 65536  # pairs per predict call: one compiled shape


class PairPredictor:
  """Predicted ratings for (user, item) index pairs from factors, on the rating scale.

  A pair whose user and item both have train ratings gets the model's prediction; any
  other pair the `TrainStats` fallback. Clipped to `rating_scale` when `clip`.
  """

  def __init__(self, train_part: Ratings, offsets: fz.Offsets,
               rating_scale: tuple[float, float], *, clip: bool):
    self.offsets = offsets
    self.lo, self.hi = (float(v) for v in rating_scale)
    self.clip = clip
    self.stats = evaluate.TrainStats.from_ratings(train_part)
    self.user_seen = np.bincount(train_part.user, minlength=train_part.num_users) > 0
    self.item_seen = np.bincount(train_part.item, minlength=train_part.num_items) > 0
    self._forward = jax.jit(fz.predict)

  def warm(self, user: np.ndarray, item: np.ndarray) -> np.ndarray:
    return self.user_seen[user] & self.item_seen[item]

  def __call__(self, factors: fz.Factors, user: np.ndarray, item: np.ndarray) -> np.ndarray:
    """float64[N] predictions for the pairs (indices of the run's `Ratings`)."""
    user, item = np.asarray(user, np.int32), np.asarray(item, np.int32)
    warm = self.warm(user, item)
    pred = self.stats.fallback(user, item).astype(np.float64)
    wu, wi = user[warm], item[warm]
    outs = []
    for start in range(0, len(wu), _PREDICT_CHUNK):
      u = np.zeros(_PREDICT_CHUNK, np.int32)
      i = np.zeros(_PREDICT_CHUNK, np.int32)
      n = min(_PREDICT_CHUNK, len(wu) - start)
      u[:n], i[:n] = wu[start:start + n], wi[start:start + n]
      outs.append((self._forward(factors, self.offsets, u, i), n))
    model = [np.asarray(o, np.float64)[:n] for o, n in outs]
    if model:
      pred[warm] = fz.from_unit_scale(np.concatenate(model), self.lo, self.hi)
    if self.clip:
      pred = np.clip(pred, self.lo, self.hi)
    return pred

  def evaluate(self, factors: fz.Factors, part: Ratings) -> dict:
    """{"rmse", "mae", "count", "cold_count"} on `part` (sums in float64)."""
    if part.num_ratings == 0:
      return {"rmse": float("nan"), "mae": float("nan"), "count": 0, "cold_count": 0}
    err = self(factors, part.user, part.item) - part.rating.astype(np.float64)
    return {"rmse": float(np.sqrt(np.mean(err * err))), "mae": float(np.mean(np.abs(err))),
            "count": int(part.num_ratings),
            "cold_count": int(np.count_nonzero(~self.warm(part.user, part.item)))}
