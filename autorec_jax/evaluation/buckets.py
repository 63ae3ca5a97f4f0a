"""Held-out error by how active a user (or item) is in train: the cold-start view.

A single test RMSE hides where a model fails. Grouping held-out ratings by the number
of train ratings their user (or item) has shows whether a model does well on heavy
raters and poorly on newcomers: U-encoders see a user's train ratings as their input,
so users with few ratings get little signal, while V-encoders see items' rows.

Buckets are half-open ranges [lo, hi) of train-rating counts; a user with no train
rating at all falls in the first bucket when the edges start at 0. Pure numpy.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from autorec_jax.data.types import Ratings

DEFAULT_EDGES = (0, 5, 10, 20, 50, 100, 200, math.inf)


def bucket_label(lo: float, hi: float) -> str:
  """'lo-(hi-1)' for integer ranges, 'lo+' for an open end: '0-4', '200+'."""
  if math.isinf(hi):
    return f"{int(lo)}+"
  return f"{int(lo)}-{int(hi) - 1}" if hi - lo > 1 else f"{int(lo)}"


def rmse_by_activity(train: Ratings, target: Ratings, pred: np.ndarray, *,
                     by: str = "user",
                     edges: Sequence[float] = DEFAULT_EDGES) -> list[dict]:
  """Per bucket of users (or items) by train-rating count: held-out count, RMSE, MAE.

  Args:
    train: the train ratings (their counts define each row's activity).
    target: held-out ratings (valid or test) in the same index space as `train`.
    pred: float[target.num_ratings] predictions for `target`, on the rating scale.
    by: "user" or "item": whose train-rating count defines the buckets.
    edges: increasing bucket boundaries; bucket k is edges[k] <= count < edges[k+1].
      Held-out ratings whose count lies outside [edges[0], edges[-1]) are left out.

  Returns:
    One dict per bucket, in order: "bucket" (label, e.g. "5-9"), "lo", "hi",
    "rows" (distinct users/items with held-out ratings in it), "count" (held-out
    ratings), "rmse" and "mae" (NaN when the bucket is empty).
  """
  if by not in ("user", "item"):
    raise ValueError(f"by must be 'user' or 'item', got {by!r}")
  edges = [float(e) for e in edges]
  if len(edges) < 2 or any(b <= a for a, b in zip(edges[:-1], edges[1:])):
    raise ValueError(f"edges must be at least two increasing values, got {edges}")
  pred = np.asarray(pred, np.float64)
  if pred.shape != (target.num_ratings,):
    raise ValueError(f"pred has shape {pred.shape}, expected ({target.num_ratings},): "
                     "one prediction per held-out rating")
  if by == "user":
    rows_train, rows_target, num_rows = train.user, target.user, train.num_users
  else:
    rows_train, rows_target, num_rows = train.item, target.item, train.num_items
  activity = np.bincount(rows_train, minlength=num_rows)[rows_target]
  err = pred - target.rating.astype(np.float64)
  out = []
  for lo, hi in zip(edges[:-1], edges[1:]):
    sel = (activity >= lo) & (activity < hi)
    count = int(sel.sum())
    e = err[sel]
    out.append({
        "bucket": bucket_label(lo, hi), "lo": lo, "hi": hi,
        "rows": int(len(np.unique(rows_target[sel]))), "count": count,
        "rmse": float(np.sqrt(np.mean(e * e))) if count else float("nan"),
        "mae": float(np.mean(np.abs(e))) if count else float("nan"),
    })
  return out
