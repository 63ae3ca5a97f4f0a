import jax.numpy as jnp
import numpy as np
import pytest
import scipy.sparse as sp

from autorec_jax.data.batching import CSRBatcher
from autorec_jax.data.types import Ratings
from autorec_jax.evaluation import ranking
from autorec_jax.runtime import parallel


def test_topk_sums_by_hand():
  # user 0: relevant {1, 3}; list [1, 2, 3] -> hits at ranks 1 and 3.
  # user 1: relevant {0};    list [2, 0, 1] -> hit at rank 2.  user 2: none relevant.
  relevant = sp.csr_matrix(np.array([[0, 1, 0, 1], [1, 0, 0, 0], [0, 0, 0, 0]], np.float32))
  topk = np.array([[1, 2, 3], [2, 0, 1], [0, 1, 2]])
  sums = ranking.topk_sums(topk, relevant, np.array([0, 1, 2]), ks=(1, 3))
  assert sums["users"] == 2
  d = 1 / np.log2([2, 3, 4])
  assert sums["precision@1"] == pytest.approx(1.0)
  assert sums["recall@3"] == pytest.approx(1.0 + 1.0)
  assert sums["precision@3"] == pytest.approx(2 / 3 + 1 / 3)
  assert sums["ndcg@3"] == pytest.approx((d[0] + d[2]) / (d[0] + d[1]) + d[1] / d[0])
  assert sums["map@3"] == pytest.approx((1 + 2 / 3) / 2 + (1 / 2) / 1)
  assert sums["ndcg@1"] == pytest.approx(1.0 + 0.0)
  m = ranking.means(sums)
  assert m["recall@3"] == pytest.approx(1.0)


def _ratings(user, item, rating, nu, ni):
  return Ratings(user=np.asarray(user, np.int32), item=np.asarray(item, np.int32),
                 rating=np.asarray(rating, np.float32), timestamp=None,
                 user_ids=np.arange(nu), item_ids=np.arange(ni))


def _scores_model(table):
  """A forward function scoring (row, column) by a fixed table, by orientation."""
  def forward(params, x, row_bias):
    del params
    return x * 0.0 + table[None, :] + row_bias[:, None] * 0.0
  return forward


@pytest.mark.parametrize("orientation", ["user", "item"])
def test_train_items_never_enter_the_list(orientation):
  nu, ni = 8, 6
  rng = np.random.default_rng(0)
  # Every user rated item 5 (the model's favourite) in train; held-out items 0..4.
  train = _ratings(np.arange(nu), np.full(nu, 5), np.full(nu, 3.0), nu, ni)
  train = _ratings(np.r_[train.user, np.arange(nu)], np.r_[train.item, np.full(nu, 4)],
                   np.r_[train.rating, np.full(nu, 2.0)], nu, ni)
  target = _ratings(np.arange(nu), rng.integers(0, 4, nu), np.full(nu, 5.0), nu, ni)
  # Only items 4 and 5 have train ratings: every other item is untrained -> excluded.
  # So the candidate list is empty for everyone except through trained items, which
  # are all rated in train: no hits, and no train item may appear.
  if orientation == "user":
    table = jnp.asarray(np.arange(ni, dtype=np.float32))  # higher item index = better
  else:
    table = jnp.asarray(np.ones(nu, np.float32))
  matrix = (train.to_csr(orientation))
  batcher = CSRBatcher(matrix, 8, seed=0, prefetch=0)
  ev = ranking.RankingEvaluator(train=train, target=target, orientation=orientation,
                                batcher=batcher, forward=_scores_model(table),
                                mesh=parallel.make_mesh(), ks=(2,), threshold=4.0,
                                row_bias=np.zeros(matrix.shape[0], np.float32))
  out = ev(None)
  assert out["recall@2"] == 0.0


def test_user_and_item_orientation_agree_on_the_same_scores():
  rng = np.random.default_rng(1)
  nu, ni = 16, 10
  dense = rng.random((nu, ni)) < 0.5
  dense[:, :] |= np.eye(nu, ni, dtype=bool)
  u, i = np.nonzero(dense)
  r = rng.integers(1, 6, len(u)).astype(np.float32)
  held = rng.random(len(u)) < 0.3
  all_r = _ratings(u, i, r, nu, ni)
  train, target = all_r.subset(~held), all_r.subset(held)
  item_score = rng.normal(size=ni).astype(np.float32)

  def forward_user(params, x, row_bias):
    return x * 0.0 + jnp.asarray(item_score)[None, :]

  def forward_item(params, x, row_bias):
    return x * 0.0 + row_bias[:, None]

  results = []
  for orientation, forward, bias in (
      ("user", forward_user, np.zeros(nu, np.float32)),
      ("item", forward_item, item_score)):
    matrix = train.to_csr(orientation)
    batcher = CSRBatcher(matrix, 8, seed=0, prefetch=0)
    ev = ranking.RankingEvaluator(train=train, target=target, orientation=orientation,
                                  batcher=batcher, forward=forward, mesh=parallel.make_mesh(),
                                  ks=(3, 5), threshold=3.0, row_bias=bias)
    results.append(ev(None))
  assert results[0].keys() == results[1].keys() and results[0]
  for k in results[0]:
    assert results[0][k] == pytest.approx(results[1][k]), k


def test_an_item_based_score_matrix_shared_between_held_out_sets_is_computed_once():
  rng = np.random.default_rng(2)
  nu, ni = 12, 9
  u, i = np.nonzero(rng.random((nu, ni)) < 0.6)
  all_r = _ratings(u, i, rng.integers(1, 6, len(u)).astype(np.float32), nu, ni)
  part = rng.integers(0, 3, len(u))
  train, valid, test = (all_r.subset(part == p) for p in range(3))
  item_score = rng.normal(size=ni).astype(np.float32)

  def forward(params, x, row_bias):
    return x * 0.0 + row_bias[:, None] + params

  matrix = train.to_csr("item")

  def evaluator(target):
    return ranking.RankingEvaluator(
        train=train, target=target, orientation="item",
        batcher=CSRBatcher(matrix, 4, seed=0, prefetch=0), forward=forward,
        mesh=parallel.make_mesh(), ks=(3,), threshold=3.0, row_bias=item_score)

  alone = [evaluator(t)(jnp.float32(0.0)) for t in (test, valid)]
  shared = {}
  test_ev, valid_ev = evaluator(test), evaluator(valid)
  together = [test_ev(jnp.float32(0.0), shared=shared)]
  assert shared["item_scores"].shape == (ni, nu)
  calls = []
  valid_ev.item_scores = lambda params: calls.append(params)  # must not be called
  together.append(valid_ev(jnp.float32(0.0), shared=shared))
  assert not calls and alone == together and alone[0]
