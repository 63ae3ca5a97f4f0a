"""Held-out RMSE and MAE: the model on warm entries, a documented fallback on cold ones.

A held-out rating is *warm* when its row (the user for U-AutoRec, the item for
I-AutoRec) has at least one train rating to feed the model and its column (the output
unit) was trained by at least one train rating. Every other held-out rating is *cold*
and gets the fallback prediction, from train ratings only:

  item mean if the item has train ratings, else user mean if the user has, else the
  global train mean.

Predictions are clipped to the rating scale when `clip` is set. Sums are accumulated
in float64 on the host and divided once.
"""

from __future__ import annotations

import dataclasses
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np

from autorec_jax.data.batching import CSRBatcher
from autorec_jax.data.preprocess import Preprocessor
from autorec_jax.data.types import Ratings
from autorec_jax.models import losses
from autorec_jax.runtime import parallel


def make_eval_step(model, *, clip_min: float | None, clip_max: float | None,
                   pre: Preprocessor | None = None) -> Callable:
  """(params, batch) -> {"sse", "sae", "count"} summed over observed target entries.

  With a preprocessor the model's outputs are mapped back to the rating scale, using
  the batch's "row_bias", before clipping and comparing with the raw targets.
  """
  undo = pre is not None and not pre.is_identity

  def eval_step(params, batch):
    pred = model.apply({"params": params}, batch["x"], train=False)
    if undo:
      pred = pre.inverse(pred, batch["row_bias"])
    if clip_min is not None:
      pred = jnp.clip(pred, clip_min, clip_max)
    mask = batch["target_mask"] * batch["row_mask"][:, None]
    sse, count = losses.masked_sse(pred, batch["target"], mask)
    sae, _ = losses.masked_sae(pred, batch["target"], mask)
    return {"sse": sse, "sae": sae, "count": count}

  return eval_step


@dataclasses.dataclass
class TrainStats:
  """Means of the train ratings, for the cold-entry fallback."""

  global_mean: float
  user_mean: np.ndarray  # NaN where the user has no train rating
  item_mean: np.ndarray

  @classmethod
  def from_ratings(cls, train: Ratings) -> "TrainStats":
    def means(index, n):
      count = np.bincount(index, minlength=n)
      total = np.bincount(index, weights=train.rating, minlength=n)
      with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, total / np.maximum(count, 1), np.nan)
    global_mean = float(train.rating.mean()) if train.num_ratings else 0.0
    return cls(global_mean, means(train.user, train.num_users),
               means(train.item, train.num_items))

  def fallback(self, user: np.ndarray, item: np.ndarray) -> np.ndarray:
    """The fallback prediction for each (user, item) pair."""
    pred = self.item_mean[item]
    pred = np.where(np.isnan(pred), self.user_mean[user], pred)
    return np.where(np.isnan(pred), self.global_mean, pred)


class Evaluator:
  """RMSE/MAE of a model's params on one held-out set (valid or test)."""

  def __init__(self, *, train: Ratings, target: Ratings, orientation: str,
               batcher: CSRBatcher, eval_step: Callable, mesh,
               rating_scale: tuple[float, float] | None,
               row_bias: np.ndarray | None = None):
    """`batcher` holds the model-unit train input; `train`/`target` are raw ratings."""
    self._batcher = batcher
    self._row_bias = (np.zeros(batcher.num_rows, np.float32) if row_bias is None
                      else np.asarray(row_bias, np.float32))
    self._eval_step = eval_step
    self._sharding = parallel.data_sharded(mesh)
    rows_t, cols_t = ((train.user, train.item) if orientation == "user"
                      else (train.item, train.user))
    rows, cols = ((target.user, target.item) if orientation == "user"
                  else (target.item, target.user))
    row_seen = np.bincount(rows_t, minlength=batcher.num_rows) > 0
    col_seen = np.bincount(cols_t, minlength=batcher.num_cols) > 0
    warm = row_seen[rows] & col_seen[cols]
    self.num_ratings = target.num_ratings
    self.num_cold = int((~warm).sum())
    self._warm_csr = target.subset(warm).to_csr(orientation)

    cold = target.subset(~warm)
    pred = TrainStats.from_ratings(train).fallback(cold.user, cold.item)
    if rating_scale is not None:
      pred = np.clip(pred, *rating_scale)
    err = pred.astype(np.float64) - cold.rating
    self._cold_sse = float(np.sum(err * err))
    self._cold_sae = float(np.sum(np.abs(err)))

  def __call__(self, params) -> dict[str, float]:
    outs = []
    for batch in self._batcher.eval_batches(self._warm_csr):
      batch = dict(batch)  # the batcher's dict belongs to its buffer ring
      rows = batch.pop("rows")
      batch["row_bias"] = np.where(rows >= 0, self._row_bias[np.maximum(rows, 0)], 0.0
                                   ).astype(np.float32)
      outs.append(self._eval_step(params, parallel.to_global(batch, self._sharding)))
    # One fetch after all batches are dispatched; per-batch sums added in float64.
    warm = {k: 0.0 for k in ("sse", "sae", "count")}
    for out in jax.device_get(outs):
      for k in warm:
        warm[k] += float(out[k])
    count = warm["count"] + self.num_cold
    if count == 0:
      return {"rmse": float("nan"), "mae": float("nan"), "count": 0, "cold_count": 0}
    return {"rmse": float(np.sqrt((warm["sse"] + self._cold_sse) / count)),
            "mae": float((warm["sae"] + self._cold_sae) / count),
            "count": int(count), "cold_count": self.num_cold}
