"""Held-out RMSE and MAE: the model on warm entries, a documented fallback on cold ones.

A held-out rating is *warm* when its row (the user for U-AutoRec, the item for
I-AutoRec) has at least one train rating to feed the model and its column (the output
unit) was trained by at least one train rating. Every other held-out rating is *cold*
and gets the fallback prediction, from train ratings only:

  item mean if the item has train ratings, else user mean if the user has, else the
  global train mean.

Predictions are clipped to the rating scale when `clip` is set. Sums are accumulated
in float64 on the host and divided once.

Where the model runs on the sparse path (one device with the sparse ops), a pass
feeds it each batch of rows as one entry list, the rows' train entries with their
values and their held-out entries with value 0 (which changes no input), and reads
its output at those entries only (`make_entries_eval_step`): the same predictions to
float rounding, without the dense [batch, items] products, which cost more than a
training epoch on MovieLens-1M.
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
from autorec_jax.models.sparse import SparseRows
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


def make_entries_eval_step(model, *, num_inputs: int, clip_min: float | None,
                           clip_max: float | None, pre: Preprocessor | None = None
                           ) -> Callable:
  """As `make_eval_step`, for the batches of `Evaluator(entries=True)`: the model's
  input and output at the batch's listed entries, compared where `entry_is_target`."""
  undo = pre is not None and not pre.is_identity

  def eval_step(params, batch):
    row_E, col_E = batch["entry_row"], batch["entry_col"]
    x = SparseRows(row_E, col_E, batch["entry_val"], batch["entry_count"],
                   shape=(batch["row_bias"].shape[0], num_inputs))
    pred_E = model.apply({"params": params}, x, train=False, output="entries")
    if undo:  # Preprocessor.inverse, at the entries
      pred_E = (pred_E + batch["row_bias"][row_E]) * pre.half + pre.mid
    if clip_min is not None:
      pred_E = jnp.clip(pred_E, clip_min, clip_max)
    mask_E = batch["entry_is_target"] * x.valid()
    sse, count = losses.masked_sse(pred_E, batch["entry_target"], mask_E)
    sae, _ = losses.masked_sae(pred_E, batch["entry_target"], mask_E)
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


# Device batches of an evaluator whose inputs fit in this many bytes are built once
# and kept: a validation pass every epoch then only computes (on a small data set
# building them cost most of the pass).
CACHE_MAX_BYTES = 512 << 20


class Evaluator:
  """RMSE/MAE of a model's params on one held-out set (valid or test)."""

  def __init__(self, *, train: Ratings, target: Ratings, orientation: str,
               batcher: CSRBatcher, eval_step: Callable, mesh,
               rating_scale: tuple[float, float] | None,
               row_bias: np.ndarray | None = None, cache_max_bytes: int = CACHE_MAX_BYTES,
               entries: bool = False):
    """`batcher` holds the model-unit train input; `train`/`target` are raw ratings.
    `entries`: batches as entry lists for a `make_entries_eval_step` step (one
    process), built once and kept."""
    self._batcher = batcher
    self._entries = entries
    self._cache_max_bytes = cache_max_bytes
    self._cached: list | None = None
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

  def _device_batches(self):
    """The pass's batches on the devices: built from the batcher, or the kept ones."""
    if self._cached is not None:
      yield from self._cached
      return
    if self._entries:
      self._cached = [jax.device_put(b) for b in self._entry_batches()]
      yield from self._cached
      return
    num_rows = int(np.count_nonzero(np.diff(self._warm_csr.indptr)))
    batches = -(-num_rows // self._batcher.batch_size)
    # x, target, target_mask: [local batch, columns] float32 each.
    keep = (batches * self._batcher.local_batch_size * self._batcher.num_cols * 12
            <= self._cache_max_bytes)
    built = []
    for batch in self._batcher.eval_batches(self._warm_csr):
      batch = dict(batch)  # the batcher's dict belongs to its buffer ring
      rows = batch.pop("rows")
      batch["row_bias"] = np.where(rows >= 0, self._row_bias[np.maximum(rows, 0)], 0.0
                                   ).astype(np.float32)
      batch = parallel.to_global(batch, self._sharding)
      if keep:
        built.append(batch)
      yield batch
    if keep:
      self._cached = built

  def _entry_batches(self) -> list[dict[str, np.ndarray]]:
    """Each batch of rows with a warm target as one entry list, row-major: the rows'
    train entries (value: the model-unit input) and target entries (value 0, target:
    the rating), padded to one capacity by repeating the last entry, flagged 0."""
    x_csr, t_csr = self._batcher.matrix, self._warm_csr
    rows_N = np.flatnonzero(np.diff(t_csr.indptr) > 0)
    size = self._batcher.batch_size
    parts = []
    for start in range(0, len(rows_N), size):
      rows = rows_N[start:start + size]
      xs, ts = x_csr[rows], t_csr[rows]
      r = np.concatenate([np.repeat(np.arange(len(rows)), np.diff(m.indptr))
                          for m in (xs, ts)])
      c = np.concatenate([xs.indices, ts.indices])
      order = np.lexsort((c, r))
      zeros_x, zeros_t = np.zeros(xs.nnz, np.float32), np.zeros(ts.nnz, np.float32)
      parts.append((rows, r[order], c[order],
                    np.concatenate([xs.data, zeros_t])[order],
                    np.concatenate([zeros_x, ts.data])[order],
                    np.concatenate([zeros_x, np.ones(ts.nnz, np.float32)])[order]))
    capacity = max([len(p[1]) for p in parts] + [1])
    batches = []
    for rows, r, c, val, target, is_target in parts:
      n, pad = len(r), capacity - len(r)

      def padded(a, dtype, fill):
        return np.concatenate([a, np.full(pad, fill)]).astype(dtype)

      bias = np.zeros(size, np.float32)
      bias[:len(rows)] = self._row_bias[rows]
      batches.append({
          "entry_row": padded(r, np.int32, r[-1]), "entry_col": padded(c, np.int32, c[-1]),
          "entry_val": padded(val, np.float32, 0.0),
          "entry_target": padded(target, np.float32, 0.0),
          "entry_is_target": padded(is_target, np.float32, 0.0),
          "entry_count": np.asarray([n], np.int32), "row_bias": bias})
    return batches

  def __call__(self, params) -> dict[str, float]:
    outs = [self._eval_step(params, batch) for batch in self._device_batches()]
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
