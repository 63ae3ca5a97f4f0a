"""Top-k item selection with one tie rule, shared by validation and serving.

Every ranked list in the package (validation NDCG/Recall/..., ensemble ranking
metrics, `Model.recommend`) is built here, so the metrics reported for a run and the
lists it serves are the same lists. The rule:

  * higher score first;
  * equal scores in increasing item-index order;
  * items not allowed (masked out, or scored -inf or NaN) never appear;
  * a row with fewer than k allowed items is padded with -1 at the end.

This is jax.lax.top_k's order (among equal values it puts the lower index first), so
`top_k_jax` is lax.top_k on masked scores and `top_k_numpy` reproduces it exactly on
the host. 0.0 and -0.0 count as equal scores in both (lax.top_k alone would order
them by sign).
"""

from __future__ import annotations

import numbers

import jax
import jax.numpy as jnp
import numpy as np


def check_k(k) -> int:
  """k as a Python int; ValueError unless it is a positive integer (bools rejected)."""
  if isinstance(k, (bool, np.bool_)) or not isinstance(k, numbers.Integral):
    raise ValueError(f"k must be a positive integer, got {k!r}")
  if k < 1:
    raise ValueError(f"k must be a positive integer, got {k}")
  return int(k)


def top_k_numpy(scores_UxI: np.ndarray, k: int, allowed_UxI: np.ndarray | None = None
                ) -> np.ndarray:
  """int64[U, k]: each row's k best allowed item indices, best first (module rule).

  Exact under ties in O(I) per row: np.partition finds each row's k-th largest
  value v; the row's selection is every item scored above v plus the lowest-index
  items scored exactly v, as many as fit in k. A stable sort of those k by descending
  score then keeps equal scores in index order. (A plain argpartition picks an
  arbitrary subset of the items tied at v.) Works on negated scores ("costs", lower
  is better) so that one copy of the matrix serves for masking, selecting and sorting.

  Args:
    scores_UxI: scores, one row per user (any real dtype; not modified).
    k: how many items per row; may exceed I (the rest is -1).
    allowed_UxI: bool, broadcastable to scores_UxI; False excludes an item. None
      allows every item with a score above -inf.
  """
  k = check_k(k)
  scores_UxI = np.asarray(scores_UxI)
  if scores_UxI.ndim != 2:
    raise ValueError(f"scores_UxI must be 2-D, got shape {scores_UxI.shape}")
  n_users, n_items = scores_UxI.shape
  out_UxK = np.full((n_users, k), -1, np.int64)
  kk = min(k, n_items)
  if kk == 0 or n_users == 0:
    return out_UxK
  dtype = np.result_type(scores_UxI.dtype, np.float32)
  cost_UxI = -np.asarray(scores_UxI, dtype)  # a new array: masked below
  cost_UxI[np.isnan(cost_UxI)] = np.inf
  if allowed_UxI is not None:
    cost_UxI[~np.broadcast_to(np.asarray(allowed_UxI, bool), cost_UxI.shape)] = np.inf
  kth_U1 = np.partition(cost_UxI, kk - 1, axis=1)[:, kk - 1:kk]
  chosen_UxI = cost_UxI < kth_U1
  tied_UxI = cost_UxI == kth_U1
  room_U = kk - chosen_UxI.sum(1)
  n_tied_U = tied_UxI.sum(1)
  crowded_C = np.flatnonzero(n_tied_U > room_U)  # more items tied at v than fit
  if len(crowded_C):
    # Keep the first room_U tied items of each crowded row: rank the tied entries
    # within their row (nonzero lists them row by row, columns ascending).
    row_T, col_T = np.nonzero(tied_UxI[crowded_C])
    counts_C = n_tied_U[crowded_C]
    rank_T = np.arange(len(row_T)) - np.repeat(np.cumsum(counts_C) - counts_C, counts_C)
    keep_T = rank_T < room_U[crowded_C][row_T]
    tied_UxI[crowded_C] = False
    tied_UxI[crowded_C[row_T[keep_T]], col_T[keep_T]] = True
  chosen_UxI |= tied_UxI
  # Exactly kk chosen per row; nonzero lists them row by row, columns ascending.
  chosen_UxK = np.nonzero(chosen_UxI)[1].reshape(n_users, kk)
  cost_UxK = np.take_along_axis(cost_UxI, chosen_UxK, 1)
  order_UxK = np.argsort(cost_UxK, axis=1, kind="stable")
  best_UxK = np.take_along_axis(chosen_UxK, order_UxK, 1)
  best_UxK[np.take_along_axis(cost_UxK, order_UxK, 1) == np.inf] = -1
  out_UxK[:, :kk] = best_UxK
  return out_UxK


def top_k_items(scores_I: np.ndarray, k: int, allowed_I: np.ndarray | None = None
                ) -> np.ndarray:
  """int64[<= k]: one row's best allowed items, best first, without -1 padding (a k
  beyond the number of items gives them all, without allocating k entries)."""
  scores_I = np.asarray(scores_I)
  if scores_I.ndim != 1:
    raise ValueError(f"scores_I must be 1-D, got shape {scores_I.shape}")
  k = max(1, min(check_k(k), len(scores_I)))
  allowed = None if allowed_I is None else np.asarray(allowed_I, bool)[None, :]
  best_K = top_k_numpy(scores_I[None, :], k, allowed)[0]
  return best_K[best_K >= 0]


def top_k_jax(scores_BxI: jax.Array, k: int, excluded_BxI: jax.Array | None = None
              ) -> jax.Array:
  """int32[B, k]: `top_k_numpy`'s lists computed with jax.lax.top_k (usable in jit).

  Excluded items (and NaN scores) are set to -inf before lax.top_k, whose order under
  ties is the module rule; an entry whose value is -inf is an item that is not
  allowed and becomes -1. lax.top_k needs k <= I, so k is clamped to I and the
  result padded with -1.

  Args:
    scores_BxI: scores, one row per user.
    k: a positive Python int (static under jit); may exceed I.
    excluded_BxI: bool, broadcastable to scores_BxI; True excludes an item.
  """
  k = check_k(k)
  scores_BxI = jnp.asarray(scores_BxI)
  n_items = scores_BxI.shape[-1]
  lead = scores_BxI.shape[:-1]
  kk = min(k, n_items)
  if kk == 0:
    return jnp.full((*lead, k), -1, jnp.int32)
  if not jnp.issubdtype(scores_BxI.dtype, jnp.floating):
    scores_BxI = scores_BxI.astype(jnp.float32)
  drop_BxI = jnp.isnan(scores_BxI)
  if excluded_BxI is not None:
    drop_BxI = drop_BxI | jnp.asarray(excluded_BxI, bool)
  s_BxI = jnp.where(drop_BxI, -jnp.inf, scores_BxI)
  s_BxI = jnp.where(s_BxI == 0, jnp.zeros((), s_BxI.dtype), s_BxI)  # -0.0 ties 0.0
  values_BxK, index_BxK = jax.lax.top_k(s_BxI, kk)
  best_BxK = jnp.where(values_BxK == -jnp.inf, -1, index_BxK).astype(jnp.int32)
  if kk < k:
    pad = [(0, 0)] * len(lead) + [(0, k - kk)]
    best_BxK = jnp.pad(best_BxK, pad, constant_values=-1)
  return best_BxK
