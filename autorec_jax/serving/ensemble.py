"""Mixing U- and V-encoders: a weighted average of trained models' predictions.

  from autorec_jax.serving import api

  from autorec_jax.serving import ensemble
  members = [api.load("runs/ml1m_user"), api.load("runs/ml1m_item")]
  blend = ensemble.Ensemble.fit(members)          # weights fitted on validation
  blend.evaluate("test")                          # {"rmse", "mae", "count"}
  ensemble.Ensemble.average(members).evaluate("test")

The members must be runs on the same data with the same split (checked), so their
validation and test parts are the same ratings. `fit` chooses the weights that
minimise the squared error on the validation part under sum(weights) = 1 (least
squares with one constraint, solved exactly); the test part is never looked at.
Each member's prediction already follows its run's warm/cold rule and clipping; the
mix is clipped to the rating scale again.
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

from autorec_jax.data.types import Ratings
from autorec_jax.evaluation import ranking
from autorec_jax.evaluation import topk
from autorec_jax.serving import predict


def _same_split(members) -> None:
  first = members[0].predictor
  for other in members[1:]:
    p = other.predictor
    if p.cfg.data.to_dict() != first.cfg.data.to_dict():
      raise ValueError("ensemble members must be trained on the same data and split "
                       "(their config.json `data` sections differ)")
    for part in ("train", "valid", "test"):
      a, b = getattr(first.data.split, part), getattr(p.data.split, part)
      if not np.array_equal(a, b):
        raise ValueError(f"ensemble members have different {part} parts")


def blend_weights(preds_MxN: np.ndarray, truth_N: np.ndarray) -> np.ndarray:
  """argmin_w ||w @ preds - truth||^2 subject to sum(w) = 1 (exact, via the KKT system)."""
  p = np.asarray(preds_MxN, np.float64)
  m = len(p)
  kkt = np.zeros((m + 1, m + 1))
  kkt[:m, :m] = 2.0 * p @ p.T
  kkt[:m, m] = kkt[m, :m] = 1.0
  rhs = np.concatenate([2.0 * p @ np.asarray(truth_N, np.float64), [1.0]])
  return np.linalg.lstsq(kkt, rhs, rcond=None)[0][:m]


class Ensemble:
  """A weighted average of api.Model predictions on one data set and split."""

  def __init__(self, members: Sequence, weights: Sequence[float]):
    if len(members) < 1 or len(members) != len(weights):
      raise ValueError("need one weight per member and at least one member")
    _same_split(members)
    self.members = list(members)
    self.weights = np.asarray(weights, np.float64)
    first = members[0]
    self.rating_scale = first.rating_scale
    self.data = first.predictor.data

  @classmethod
  def average(cls, members: Sequence) -> "Ensemble":
    return cls(members, [1.0 / len(members)] * len(members))

  @classmethod
  def fit(cls, members: Sequence, part: str = "valid") -> "Ensemble":
    """Weights fitted by constrained least squares on the run's `part` ratings."""
    _same_split(members)
    target = members[0].predictor.part(part)
    if target.num_ratings == 0:
      raise ValueError(f"the {part} part is empty: nothing to fit the blend weights on")
    preds = np.stack([m.predictor.predict(target.user, target.item) for m in members])
    return cls(members, blend_weights(preds, target.rating))

  def predict_index(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
    """Mixed predicted ratings of (user, item) index pairs."""
    out = sum(w * m.predictor.predict(users, items).astype(np.float64)
              for w, m in zip(self.weights, self.members))
    return np.clip(out, *self.rating_scale).astype(np.float32)

  def predict(self, user_ids, item_ids) -> np.ndarray:
    """Mixed predicted ratings of (user, item) pairs given by dataset ids."""
    first = self.members[0]
    return self.predict_index(first.user_index(user_ids), first.item_index(item_ids))

  def scores(self, users: np.ndarray) -> np.ndarray:
    """float32[U, I] mixed unclipped scores of every item (for ranking)."""
    return sum(w * m.scores(users) for w, m in zip(self.weights, self.members)).astype(
        np.float32)

  def evaluate(self, part: str = "test") -> dict[str, float]:
    """RMSE, MAE and count of the mix on the run's `part` ratings."""
    target = self.members[0].predictor.part(part)
    return predict.metrics(self.predict_index(target.user, target.item), target.rating)


def ranking_metrics(scores_fn: Callable[[np.ndarray], np.ndarray], *, train: Ratings,
                    target: Ratings, trained_items: np.ndarray, ks: Sequence[int] = (10,),
                    threshold: float, batch: int = 1024) -> dict[str, float]:
  """NDCG/Recall/Precision/MAP@k (ranking.py's definitions) of any scorer.

  `scores_fn(user_indices) -> float32[U, I]`; candidates are `trained_items` minus the
  user's `train` items; relevant: `target` ratings >= threshold. `train` and `target`
  share one index space (they may be a fold-in's given and held-out ratings). Lists
  follow topk.py's rule (equal scores in item-index order), as validation's and
  `recommend`'s do, so the three agree on tied scores.
  """
  relevant = target.subset(target.rating >= threshold).to_csr("user")
  train_ui = train.to_csr("user")
  users = np.flatnonzero(np.diff(relevant.indptr) > 0)
  k_max = max(ks)
  topk_UxK = np.full((len(users), k_max), -1, np.int64)
  for start in range(0, len(users), batch):
    chunk = users[start:start + batch]
    s = np.array(scores_fn(chunk), np.float32)
    s[:, ~np.asarray(trained_items, bool)] = -np.inf
    rows = train_ui[chunk]
    s[np.repeat(np.arange(len(chunk)), np.diff(rows.indptr)), rows.indices] = -np.inf
    topk_UxK[start:start + len(chunk)] = topk.top_k_numpy(s, k_max)
  return ranking.means(ranking.topk_sums(topk_UxK, relevant, users, ks))
