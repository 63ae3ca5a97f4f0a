"""Top-k selection (evaluation/topk.py): one tie rule for validation and serving."""

import types

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from autorec_jax.data.batching import CSRBatcher
from autorec_jax.data.types import Ratings
from autorec_jax.evaluation import ranking, topk
from autorec_jax.runtime import parallel
from autorec_jax.serving import api, ensemble


def _reference(scores_UxI, k, allowed_UxI=None):
  """The rule spelled out: sort allowed finite items by (-score, index), pad with -1."""
  scores_UxI = np.asarray(scores_UxI, np.float64)
  if allowed_UxI is None:
    allowed_UxI = np.ones(scores_UxI.shape, bool)
  out = np.full((len(scores_UxI), k), -1, np.int64)
  for u, (s, ok) in enumerate(zip(scores_UxI, allowed_UxI)):
    items = [i for i in range(len(s)) if ok[i] and s[i] > -np.inf]
    items.sort(key=lambda i: (-s[i], i))
    out[u, :min(k, len(items))] = items[:k]
  return out


def test_ties_go_to_the_lower_index():
  scores_UxI = np.array([[1.0, 3.0, 3.0, 2.0, 3.0, 1.0],
                         [5.0, 5.0, 5.0, 5.0, 5.0, 5.0]], np.float32)
  want = np.array([[1, 2, 4, 3], [0, 1, 2, 3]])
  np.testing.assert_array_equal(topk.top_k_numpy(scores_UxI, 4), want)
  np.testing.assert_array_equal(np.asarray(topk.top_k_jax(jnp.asarray(scores_UxI), 4)), want)
  # The k-th place is a tie: the lowest-index tied items fill it, not an arbitrary one.
  np.testing.assert_array_equal(topk.top_k_numpy(scores_UxI, 2), want[:, :2])
  np.testing.assert_array_equal(np.asarray(topk.top_k_jax(jnp.asarray(scores_UxI), 2)),
                                want[:, :2])


def test_numpy_and_jax_agree_on_heavily_tied_scores():
  rng = np.random.default_rng(0)
  scores_UxI = rng.integers(0, 4, (64, 300)).astype(np.float32)
  excluded_UxI = rng.random(scores_UxI.shape) < 0.3
  excluded_UxI[:3] = True  # some rows with nothing allowed
  excluded_UxI[3:6, 5:] = True  # and some with fewer than k allowed
  step = jax.jit(topk.top_k_jax, static_argnums=1)
  for k in (1, 7, 50, 300):
    want = _reference(scores_UxI, k, ~excluded_UxI)
    got_np = topk.top_k_numpy(scores_UxI, k, ~excluded_UxI)
    got_jax = np.asarray(step(jnp.asarray(scores_UxI), k, jnp.asarray(excluded_UxI)))
    np.testing.assert_array_equal(got_np, want)
    np.testing.assert_array_equal(got_jax, want)
    assert got_np.dtype == np.int64


def test_minus_inf_nan_and_signed_zero():
  scores_UxI = np.array([[0.0, -np.inf, np.nan, -0.0, np.inf, 0.0]], np.float32)
  want = np.array([[4, 0, 3, 5, -1, -1, -1]])  # -0.0 ties 0.0; -inf and NaN never appear
  np.testing.assert_array_equal(topk.top_k_numpy(scores_UxI, 7), want)
  np.testing.assert_array_equal(np.asarray(topk.top_k_jax(jnp.asarray(scores_UxI), 7)), want)


def test_k_larger_than_the_item_count_pads_with_minus_one():
  scores_UxI = np.array([[0.5, 2.0, 1.0], [1.0, 1.0, 1.0]], np.float32)
  want = np.array([[1, 2, 0, -1, -1], [0, 1, 2, -1, -1]])
  np.testing.assert_array_equal(topk.top_k_numpy(scores_UxI, 5), want)
  np.testing.assert_array_equal(np.asarray(topk.top_k_jax(jnp.asarray(scores_UxI), 5)), want)
  np.testing.assert_array_equal(topk.top_k_items(scores_UxI[0], 5), [1, 2, 0])
  huge = 10**20  # beyond any array: the item count bounds what is allocated
  np.testing.assert_array_equal(topk.top_k_items(scores_UxI[0], huge), [1, 2, 0])
  assert topk.top_k_items(np.zeros(0, np.float32), huge).size == 0
  empty_Ux0 = np.zeros((2, 0), np.float32)
  np.testing.assert_array_equal(topk.top_k_numpy(empty_Ux0, 2), -np.ones((2, 2)))
  np.testing.assert_array_equal(np.asarray(topk.top_k_jax(jnp.asarray(empty_Ux0), 2)),
                                -np.ones((2, 2)))


def test_fully_excluded_rows_are_all_minus_one():
  scores_UxI = np.arange(12, dtype=np.float32).reshape(3, 4)
  allowed_UxI = np.array([[False] * 4, [True, False, True, False], [False] * 4])
  want = np.array([[-1, -1, -1], [2, 0, -1], [-1, -1, -1]])
  np.testing.assert_array_equal(topk.top_k_numpy(scores_UxI, 3, allowed_UxI), want)
  np.testing.assert_array_equal(
      np.asarray(topk.top_k_jax(jnp.asarray(scores_UxI), 3, jnp.asarray(~allowed_UxI))), want)
  assert topk.top_k_items(scores_UxI[0], 3, allowed_UxI[0]).size == 0


@pytest.mark.parametrize("k", [0, -1, 2.0, "3", True, None])
def test_k_must_be_a_positive_int(k):
  scores_UxI = np.zeros((2, 4), np.float32)
  with pytest.raises(ValueError, match="positive integer"):
    topk.top_k_numpy(scores_UxI, k)
  with pytest.raises(ValueError, match="positive integer"):
    topk.top_k_jax(jnp.asarray(scores_UxI), k)
  with pytest.raises(ValueError, match="positive integer"):
    topk.top_k_items(scores_UxI[0], k)


def test_numpy_integer_k_is_accepted():
  np.testing.assert_array_equal(topk.top_k_numpy(np.array([[1, 3, 2]]), np.int64(2)), [[1, 2]])


def _ratings(user, item, rating, nu, ni):
  return Ratings(user=np.asarray(user, np.int32), item=np.asarray(item, np.int32),
                 rating=np.asarray(rating, np.float32), timestamp=None,
                 user_ids=np.arange(nu), item_ids=np.arange(ni))


def test_validation_and_recommend_rank_tied_scores_alike(monkeypatch):
  """Validation (both orientations), ensemble.ranking_metrics and Model.ranked build
  the same lists from one tied score table."""
  rng = np.random.default_rng(3)
  nu, ni, k = 24, 40, 8
  rated = rng.random((nu, ni)) < 0.4
  rated[:, -3:] = False  # three untrained items: never candidates
  u, i = np.nonzero(rated)
  held = rng.random(len(u)) < 0.4
  all_r = _ratings(u, i, rng.integers(1, 6, len(u)), nu, ni)
  train, target = all_r.subset(~held), all_r.subset(held)
  table_UxI = rng.integers(0, 3, (nu, ni)).astype(np.float32)  # many ties
  trained_items = np.bincount(train.item, minlength=ni) > 0

  lists = []  # {user: ranked items} of each validation path, via topk_sums
  topk_sums = ranking.topk_sums

  def capture(topk_UxK, relevant, users, ks):
    lists.append({int(user): [int(i) for i in row] for user, row in zip(users, topk_UxK)})
    return topk_sums(topk_UxK, relevant, users, ks)

  monkeypatch.setattr(ranking, "topk_sums", capture)

  ensemble.ranking_metrics(lambda users: table_UxI[users], train=train, target=target,
                           trained_items=trained_items, ks=(k,), threshold=3.0)

  # Row bias carries each row's index, so the forward function can look up its scores.
  def forward_user(params, x, row_bias):
    return x * 0.0 + jnp.asarray(table_UxI)[row_bias.astype(jnp.int32)]

  def forward_item(params, x, row_bias):
    return x * 0.0 + jnp.asarray(table_UxI.T)[row_bias.astype(jnp.int32)]

  for orientation, forward, n_rows in (("user", forward_user, nu),
                                       ("item", forward_item, ni)):
    matrix = train.to_csr(orientation)
    ev = ranking.RankingEvaluator(
        train=train, target=target, orientation=orientation,
        batcher=CSRBatcher(matrix, 8, seed=0, prefetch=0), forward=forward,
        mesh=parallel.make_mesh(), ks=(k,), threshold=3.0,
        row_bias=np.arange(n_rows, dtype=np.float32))
    assert ev(None)

  known = train.to_csr("user")
  fake_model = types.SimpleNamespace(_clip=None, titles=None, item_ids=np.arange(ni))
  served = {}
  for user in lists[0]:
    allowed_I = trained_items.copy()
    allowed_I[known.indices[known.indptr[user]:known.indptr[user + 1]]] = False
    recs = api.Model.ranked(fake_model, table_UxI[user], allowed_I, k)
    items = [r.item_id for r in recs]
    served[user] = items + [-1] * (k - len(items))
    assert served[user] == list(_reference(table_UxI[user:user + 1], k, allowed_I[None])[0])

  assert len(lists) == 3 and lists[0]
  for validation in lists:
    assert validation == served


@pytest.mark.parametrize("orientation", ["user", "item"])
def test_validation_with_k_above_the_item_count(orientation):
  """A cut-off longer than the catalogue ranks every candidate and pads the rest."""
  nu, ni = 6, 5
  rated = np.ones((nu, ni), bool)
  u, i = np.nonzero(rated)
  held = (u + i) % 3 == 0
  all_r = _ratings(u, i, np.full(len(u), 5.0), nu, ni)
  train, target = all_r.subset(~held), all_r.subset(held)
  matrix = train.to_csr(orientation)

  def forward(params, x, row_bias):
    return x * 0.0 + 1.0  # every score tied

  ev = ranking.RankingEvaluator(
      train=train, target=target, orientation=orientation,
      batcher=CSRBatcher(matrix, 8, seed=0, prefetch=0), forward=forward,
      mesh=parallel.make_mesh(), ks=(3, 12), threshold=4.0,
      row_bias=np.zeros(matrix.shape[0], np.float32))
  out = ev(None)
  assert out["recall@12"] == pytest.approx(1.0)  # every held-out item is ranked
  assert out["precision@12"] == pytest.approx(np.mean(
      [np.sum(held[u == user]) / 12 for user in range(nu) if held[u == user].any()]))
