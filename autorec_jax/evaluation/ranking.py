"""Top-K ranking metrics: NDCG@k, Recall@k, Precision@k and MAP@k per user.

For each user with at least one relevant held-out item (held-out rating >= the
relevance threshold), the candidates are every item the model was trained to output
(items with train ratings) except the ones the user rated in train: training items
never leak into the list. Items are ranked by predicted rating, equal scores in
item-index order (topk.py, the rule `recommend` uses too); relevance is binary.

  precision@k = hits / k          recall@k = hits / |relevant|
  ndcg@k      = DCG@k / IDCG@k    (gain 1 / log2(rank + 1), ideal: min(k, |relevant|) hits)
  map@k       = (1 / min(k, |relevant|)) * sum over hit ranks r of precision@r

Averages are over users with a relevant item (sums and a count are returned, so
batches and processes add up exactly).
"""

from __future__ import annotations

from typing import Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np
import scipy.sparse as sp

from autorec_jax.data.batching import CSRBatcher
from autorec_jax.data.types import Ratings
from autorec_jax.evaluation import topk
from autorec_jax.runtime import parallel

METRICS = ("ndcg", "recall", "precision", "map")


def topk_sums(topk_UxK: np.ndarray, relevant: sp.csr_matrix, users: np.ndarray,
              ks: Sequence[int]) -> dict[str, float]:
  """Summed metrics over `users` (rows of `relevant`) given their ranked item lists.

  Args:
    topk_UxK: item indices, best first, one row per user in `users` (-1: no item,
      when a user has fewer candidates than k).
    relevant: users x items, stored entries are the relevant held-out items.
    users: the row of `relevant` for each row of topk_UxK.
    ks: cut-offs, each <= topk_UxK.shape[1].
  """
  k_max = topk_UxK.shape[1]
  num_rel = np.diff(relevant.indptr)[users]
  keep = num_rel > 0
  topk_UxK, users, num_rel = topk_UxK[keep], users[keep], num_rel[keep]
  sub = relevant[users]
  hit_UxK = np.zeros(topk_UxK.shape, bool)
  for r in range(len(users)):  # per-user membership test on short sorted index lists
    hit_UxK[r] = np.isin(topk_UxK[r], sub.indices[sub.indptr[r]:sub.indptr[r + 1]])
  discount_K = 1.0 / np.log2(np.arange(2, k_max + 2))
  out = {"users": float(len(users))}
  for k in ks:
    hits = hit_UxK[:, :k]
    n_hits = hits.sum(1)
    ideal = np.minimum(num_rel, k)
    idcg = np.cumsum(discount_K[:k])[ideal - 1]
    prec_at_r = np.cumsum(hits, 1) / np.arange(1, k + 1)
    out[f"ndcg@{k}"] = float(np.sum((hits * discount_K[:k]).sum(1) / idcg))
    out[f"recall@{k}"] = float(np.sum(n_hits / num_rel))
    out[f"precision@{k}"] = float(np.sum(n_hits / k))
    out[f"map@{k}"] = float(np.sum((prec_at_r * hits).sum(1) / ideal))
  return out


def means(sums: dict[str, float]) -> dict[str, float]:
  n = sums.get("users", 0.0)
  return {k: (v / n if n else float("nan")) for k, v in sums.items() if k != "users"}


class RankingEvaluator:
  """Ranking metrics of a model on a held-out set, for either orientation.

  User-based models rank on the device, one batch of users at a time (only the top-k
  indices come back). Item-based models produce every item's scores for all users;
  that dense items x users matrix is built on the host, so it is computed only while
  it fits in `max_dense_entries` (else `available` is False and nothing is reported).
  """

  def __init__(self, *, train: Ratings, target: Ratings, orientation: str,
               batcher: CSRBatcher, forward: Callable, mesh, ks: Sequence[int],
               threshold: float, row_bias: np.ndarray, max_dense_entries: int = 400_000_000):
    self.ks = tuple(sorted(set(int(k) for k in ks)))
    self.orientation = orientation
    self._batcher = batcher
    self._forward = forward  # (params, x_BxI, row_bias_B) -> ratings [B, I]
    self._sharding = parallel.data_sharded(mesh)
    self._row_bias = np.asarray(row_bias, np.float32)
    keep = target.rating >= threshold
    relevant = target.subset(keep)
    self._relevant_ui = relevant.to_csr("user")
    self._train_ui = train.to_csr("user")
    self._trained_items = np.bincount(train.item, minlength=train.num_items) > 0
    self._users = np.flatnonzero(np.diff(self._relevant_ui.indptr) > 0)
    self.available = bool(self.ks) and (
        orientation == "user" or train.num_users * train.num_items <= max_dense_entries)
    k_max = max(self.ks) if self.ks else 0
    untrained = jnp.asarray(~self._trained_items)

    def topk_step(params, batch):
      scores_BxI = forward(params, batch["x"], batch["row_bias"])
      excluded_BxI = (batch["mask"] > 0) | untrained[None, :]
      return topk.top_k_jax(scores_BxI, k_max, excluded_BxI)  # -1: fewer than k

    self._topk_step = jax.jit(topk_step)
    self._forward_jit = jax.jit(forward)

  def __call__(self, params, *, shared: dict | None = None) -> dict[str, float]:
    """The metrics of `params`. `shared`: a dict the caller passes to evaluators of
    the same params and train data on several held-out sets, so that an item-based
    model's scores are computed once (kept there under "item_scores")."""
    if not self.available or len(self._users) == 0:
      return {}
    if self.orientation == "user":
      sums = self._user_based(params)
    else:
      shared = {} if shared is None else shared
      if "item_scores" not in shared:
        shared["item_scores"] = self.item_scores(params)
      sums = self._item_based(shared["item_scores"])
    return {f"{k}": v for k, v in means(sums).items()}

  def item_scores(self, params) -> np.ndarray:
    """An item-based model's items x users scores on the host."""
    n_items, n_users = self._train_ui.shape[1], self._train_ui.shape[0]
    scores_IxU = np.zeros((n_items, n_users), np.float32)
    batch_size = self._batcher.local_batch_size
    csr = self._batcher.matrix
    for start in range(0, n_items, batch_size):
      rows = np.arange(start, min(start + batch_size, n_items))
      x = np.zeros((batch_size, n_users), np.float32)
      x[:len(rows)] = csr[rows].toarray()
      bias = np.zeros(batch_size, np.float32)
      bias[:len(rows)] = self._row_bias[rows]
      out = self._forward_jit(params, jnp.asarray(x), jnp.asarray(bias))
      scores_IxU[rows] = np.asarray(out)[:len(rows)]
    return scores_IxU

  def _user_based(self, params) -> dict[str, float]:
    relevant_rows = sp.csr_matrix(self._relevant_ui, copy=True)
    outs, rows = [], []
    for batch in self._batcher.eval_batches(relevant_rows, with_train_mask=True):
      batch = dict(batch)
      r = batch.pop("rows").copy()  # the batcher reuses its buffers
      batch["row_bias"] = np.where(r >= 0, self._row_bias[np.maximum(r, 0)], 0.0
                                   ).astype(np.float32)
      for k in ("target", "target_mask"):
        batch.pop(k)
      outs.append(self._topk_step(params, parallel.to_global(batch, self._sharding)))
      rows.append(r)
    topk_UxK = np.concatenate([np.asarray(o) for o in jax.device_get(outs)])
    users = np.concatenate(rows)
    real = users >= 0
    return topk_sums(topk_UxK[real], self._relevant_ui, users[real], self.ks)

  def _item_based(self, scores_IxU: np.ndarray) -> dict[str, float]:
    k_max = max(self.ks)
    best = np.zeros((len(self._users), k_max), np.int64)
    for start in range(0, len(self._users), 1024):
      users = self._users[start:start + 1024]
      s = scores_IxU[:, users].T.copy()
      s[:, ~self._trained_items] = -np.inf
      train_rows = self._train_ui[users]
      s[np.repeat(np.arange(len(users)), np.diff(train_rows.indptr)), train_rows.indices] = -np.inf
      best[start:start + len(users)] = topk.top_k_numpy(s, k_max)
    return topk_sums(best, self._relevant_ui, self._users, self.ks)
