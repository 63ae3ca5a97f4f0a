import jax
import numpy as np
import pytest

from autorec_jax.data.batching import CSRBatcher
from autorec_jax.data.types import Ratings
from autorec_jax.evaluation import rmse as evaluate
from autorec_jax.runtime import parallel


class _Constant:
  """A stand-in model predicting a fixed value everywhere."""

  def __init__(self, value):
    self.value = value

  def apply(self, variables, x, train):
    del variables, train
    return x * 0.0 + self.value


def _ratings(user, item, rating, num_users=4, num_items=3):
  return Ratings(user=np.asarray(user, np.int32), item=np.asarray(item, np.int32),
                 rating=np.asarray(rating, np.float32), timestamp=None,
                 user_ids=np.arange(num_users), item_ids=np.arange(num_items))


def _evaluator(train, target, orientation="user", value=3.0, scale=(1.0, 5.0)):
  mesh = parallel.make_mesh()
  batcher = CSRBatcher(train.to_csr(orientation), 8, seed=0, prefetch=0)
  step = jax.jit(evaluate.make_eval_step(_Constant(value), clip_min=scale[0],
                                         clip_max=scale[1]))
  return evaluate.Evaluator(train=train, target=target, orientation=orientation,
                            batcher=batcher, eval_step=step, mesh=mesh, rating_scale=scale)


def test_warm_entries_use_the_model_and_cold_ones_the_fallback():
  # users 0,1 and items 0,1 have train ratings; user 3 and item 2 are cold.
  train = _ratings([0, 0, 1], [0, 1, 0], [5, 3, 1])
  target = _ratings([1, 3, 0], [1, 0, 2], [4, 2, 5])
  ev = _evaluator(train, target, value=3.5)
  # (1,1) warm -> 3.5; (3,0) cold user -> item 0 mean 3.0; (0,2) cold item -> user 0 mean 4.
  errors = np.array([3.5 - 4, 3.0 - 2, 4.0 - 5])
  out = ev(None)
  assert out["count"] == 3 and out["cold_count"] == 2
  assert out["rmse"] == pytest.approx(np.sqrt(np.mean(errors ** 2)))
  assert out["mae"] == pytest.approx(np.mean(np.abs(errors)))


def test_item_orientation_and_clipping():
  train = _ratings([0, 1, 2], [0, 0, 1], [2, 4, 3])
  target = _ratings([2, 1], [0, 1], [5, 1])
  ev = _evaluator(train, target, orientation="item", value=9.0)
  # both warm (items 0,1 and users 1,2 trained): predictions clipped to 5.
  out = ev(None)
  assert out["cold_count"] == 0
  assert out["rmse"] == pytest.approx(np.sqrt(np.mean(np.array([0.0, 4.0]) ** 2)))


def test_global_mean_when_user_and_item_are_both_cold():
  train = _ratings([0, 1], [0, 1], [1, 5])
  target = _ratings([3], [2], [2])
  out = _evaluator(train, target)(None)
  assert out["rmse"] == pytest.approx(1.0)  # global mean 3 vs 2


def test_train_stats_means():
  train = _ratings([0, 0, 1], [0, 1, 0], [5, 3, 1])
  stats = evaluate.TrainStats.from_ratings(train)
  assert stats.global_mean == pytest.approx(3.0)
  np.testing.assert_allclose(stats.user_mean[:2], [4.0, 1.0])
  assert np.isnan(stats.user_mean[2]) and np.isnan(stats.item_mean[2])
