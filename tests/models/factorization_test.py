"""SVD and ALS-WR against NumPy references, padding, recompiles and low-rank recovery."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from autorec_jax.models import factorization as fz


def _problem(rng, num_users=7, num_items=5, rank=3, density=0.6):
  """Random observed (user, item, target) triples; the last user has no ratings."""
  observed = rng.random((num_users, num_items)) < density
  observed[-1] = False
  user, item = np.nonzero(observed)
  target = rng.normal(size=len(user)).astype(np.float32)
  factors = fz.Factors(
      user_UxK=jnp.asarray(rng.normal(size=(num_users, rank)), jnp.float32),
      item_IxK=jnp.asarray(rng.normal(size=(num_items, rank)), jnp.float32),
      user_bias_U=jnp.asarray(rng.normal(size=num_users), jnp.float32),
      item_bias_I=jnp.asarray(rng.normal(size=num_items), jnp.float32))
  return user.astype(np.int32), item.astype(np.int32), target, factors


def _numpy_als(fixed, rows, cols, target, num_rows, reg):
  out = np.zeros((num_rows, fixed.shape[1]))
  for r in range(num_rows):
    sel = rows == r
    if not sel.any():
      continue
    q = np.asarray(fixed, np.float64)[cols[sel]]
    a = q.T @ q + reg * sel.sum() * np.eye(fixed.shape[1])
    out[r] = np.linalg.solve(a, q.T @ target[sel])
  return out


def test_als_half_steps_equal_a_numpy_solve_per_row():
  rng = np.random.default_rng(0)
  user, item, target, factors = _problem(rng)
  reg = 0.3
  by_user = fz.chunk_by_row(user, item, target, 7, chunk=4)
  got_users = jax.jit(lambda q, c: fz.als_solve(q, c, reg=reg))(factors.item_IxK, by_user)
  want_users = _numpy_als(factors.item_IxK, user, item, target, 7, reg)
  np.testing.assert_allclose(got_users, want_users, rtol=1e-4, atol=1e-5)
  assert np.all(np.asarray(got_users)[-1] == 0.0)  # no ratings: zero factors

  by_item = fz.chunk_by_row(item, user, target, 5, chunk=4)
  got_items = fz.als_solve(got_users, by_item, reg=reg)
  want_items = _numpy_als(want_users, item, user, target, 5, reg)
  np.testing.assert_allclose(got_items, want_items, rtol=1e-4, atol=1e-5)

  iteration = fz.make_als_iteration(reg=reg)(factors, by_user, by_item)
  np.testing.assert_allclose(iteration.user_UxK, want_users, rtol=1e-4, atol=1e-5)
  np.testing.assert_allclose(iteration.item_IxK, want_items, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("chunk", [1, 3, 64])
def test_als_chunk_size_and_padding_change_nothing(chunk):
  rng = np.random.default_rng(1)
  user, item, target, factors = _problem(rng)
  reference = fz.als_solve(factors.item_IxK, fz.chunk_by_row(user, item, target, 7, chunk=5),
                           reg=0.1)
  chunks = fz.chunk_by_row(user, item, target, 7, chunk=chunk)
  assert chunks.rows_SxC.shape[1] == chunk
  got = fz.als_solve(factors.item_IxK, chunks, reg=0.1)
  np.testing.assert_allclose(got, reference, rtol=1e-5, atol=1e-6)


def test_als_objective_matches_numpy():
  rng = np.random.default_rng(2)
  user, item, target, factors = _problem(rng)
  by_user = fz.chunk_by_row(user, item, target, 7, chunk=4)
  by_item = fz.chunk_by_row(item, user, target, 5, chunk=4)
  p, q = np.asarray(factors.user_UxK, np.float64), np.asarray(factors.item_IxK, np.float64)
  bu = np.asarray(factors.user_bias_U, np.float64)
  bi = np.asarray(factors.item_bias_I, np.float64)
  err = target - bu[user] - bi[item] - np.sum(p[user] * q[item], axis=1)
  want_sse = np.sum(err ** 2)
  want = want_sse + 0.2 * (
      np.sum(np.bincount(user, minlength=7) * (np.sum(p ** 2, 1) + bu ** 2))
      + np.sum(np.bincount(item, minlength=5) * (np.sum(q ** 2, 1) + bi ** 2)))
  got, got_sse = fz.als_objective(factors, by_user, by_item, reg=0.2)
  np.testing.assert_allclose(got_sse, want_sse, rtol=1e-5)
  np.testing.assert_allclose(got, want, rtol=1e-5)


def test_als_with_learnt_biases_solves_the_augmented_system_per_row():
  rng = np.random.default_rng(3)
  user, item, target, factors = _problem(rng)
  reg = 0.3
  by_user = fz.chunk_by_row(user, item, target, 7, chunk=4)
  by_item = fz.chunk_by_row(item, user, target, 5, chunk=4)
  got = fz.make_als_iteration(reg=reg, learn_biases=True)(factors, by_user, by_item)
  # Users given items: [p_u, b_u] fits y - b_i on [q_i, 1], ridge reg * n_u on both.
  bi = np.asarray(factors.item_bias_I, np.float64)
  q1 = np.concatenate([np.asarray(factors.item_IxK), np.ones((5, 1))], axis=1)
  users = _numpy_als(q1, user, item, target - bi[item], 7, reg)
  np.testing.assert_allclose(got.user_UxK, users[:, :-1], rtol=1e-4, atol=1e-5)
  np.testing.assert_allclose(got.user_bias_U, users[:, -1], rtol=1e-4, atol=1e-5)
  # Items given the new users and their biases.
  p1 = np.concatenate([users[:, :-1], np.ones((7, 1))], axis=1)
  items = _numpy_als(p1, item, user, target - users[user, -1], 5, reg)
  np.testing.assert_allclose(got.item_IxK, items[:, :-1], rtol=1e-4, atol=1e-5)
  np.testing.assert_allclose(got.item_bias_I, items[:, -1], rtol=1e-4, atol=1e-5)
  # Each half-step can only lower the objective it minimises.
  before = fz.als_objective(factors, by_user, by_item, reg=reg)[0]
  after = fz.als_objective(got, by_user, by_item, reg=reg)[0]
  assert float(after) < float(before)


def _numpy_svd_grads(f, user, item, target, mask, reg):
  p, q = np.asarray(f.user_UxK, np.float64), np.asarray(f.item_IxK, np.float64)
  bu, bi = np.asarray(f.user_bias_U, np.float64), np.asarray(f.item_bias_I, np.float64)
  gp, gq, gbu, gbi = (np.zeros_like(a) for a in (p, q, bu, bi))
  for u, i, y, m in zip(user, item, target, mask):
    e = y - (bu[u] + bi[i] + p[u] @ q[i])
    gp[u] += m * (-e * q[i] + reg * p[u])
    gq[i] += m * (-e * p[u] + reg * q[i])
    gbu[u] += m * (-e + reg * bu[u])
    gbi[i] += m * (-e + reg * bi[i])
  return gp, gq, gbu, gbi


@pytest.mark.parametrize("momentum", [0.0, 0.9])
@pytest.mark.parametrize("learn_biases", [True, False])
def test_svd_steps_equal_a_numpy_computation(momentum, learn_biases):
  rng = np.random.default_rng(3)
  user, item, target, factors = _problem(rng)
  if not learn_biases:
    factors = factors.replace(user_bias_U=jnp.zeros(7), item_bias_I=jnp.zeros(5))
  mask = np.ones(len(user), np.float32)
  mask[2] = 0.0  # a masked rating contributes nothing
  lr, reg = 0.05, 0.1
  tx = optax.sgd(lr, momentum=momentum or None)
  step = jax.jit(fz.make_svd_step(tx, reg=reg, learn_biases=learn_biases))
  state, opt_state = factors, tx.init(factors)
  want = [np.asarray(a, np.float64) for a in (factors.user_UxK, factors.item_IxK,
                                              factors.user_bias_U, factors.item_bias_I)]
  velocity = [np.zeros_like(a) for a in want]
  for _ in range(2):
    state, opt_state, m = step(state, opt_state, user, item, target, mask)
    ref = fz.Factors(*(jnp.asarray(a, jnp.float32) for a in want))
    grads = _numpy_svd_grads(ref, user, item, target, mask, reg)
    if not learn_biases:
      grads = grads[:2] + (np.zeros(7), np.zeros(5))
    velocity = [momentum * v + g for v, g in zip(velocity, grads)]
    want = [w - lr * v for w, v in zip(want, velocity)]
  for got, w in zip((state.user_UxK, state.item_IxK, state.user_bias_U, state.item_bias_I),
                    want):
    np.testing.assert_allclose(got, w, rtol=1e-4, atol=1e-5)
  if not learn_biases:
    assert not np.any(state.user_bias_U) and not np.any(state.item_bias_I)
  assert float(m["count"]) == len(user) - 1


def test_svd_loss_matches_numpy_and_rejects_mismatched_shapes():
  rng = np.random.default_rng(4)
  user, item, target, f = _problem(rng)
  mask = np.ones(len(user), np.float32)
  p, q = np.asarray(f.user_UxK, np.float64), np.asarray(f.item_IxK, np.float64)
  bu, bi = np.asarray(f.user_bias_U, np.float64), np.asarray(f.item_bias_I, np.float64)
  err = target - (bu[user] + bi[item] + np.sum(p[user] * q[item], 1))
  pen = np.sum(p[user] ** 2, 1) + np.sum(q[item] ** 2, 1) + bu[user] ** 2 + bi[item] ** 2
  loss, sse = fz.svd_loss(f, user, item, target, mask, reg=0.3)
  np.testing.assert_allclose(sse, np.sum(err ** 2), rtol=1e-5)
  np.testing.assert_allclose(loss, 0.5 * (np.sum(err ** 2) + 0.3 * np.sum(pen)), rtol=1e-5)
  with pytest.raises(ValueError, match="batch shapes differ"):
    fz.svd_loss(f, user, item, target[:-1], mask, reg=0.3)


def test_svd_padding_ratings_change_nothing():
  rng = np.random.default_rng(5)
  user, item, target, factors = _problem(rng)
  tx = optax.sgd(0.05)
  step = jax.jit(fz.make_svd_step(tx, reg=0.1, learn_biases=True))
  a, _, ma = step(factors, tx.init(factors), user, item, target, np.ones(len(user), np.float32))
  pad = 6  # garbage indices and targets with mask 0
  b, _, mb = step(factors, tx.init(factors), np.concatenate([user, np.full(pad, 3, np.int32)]),
                  np.concatenate([item, np.full(pad, 1, np.int32)]),
                  np.concatenate([target, np.full(pad, 9.0, np.float32)]),
                  np.concatenate([np.ones(len(user), np.float32), np.zeros(pad, np.float32)]))
  for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
    np.testing.assert_allclose(x, y, rtol=1e-6, atol=1e-7)
  np.testing.assert_allclose(ma["loss"], mb["loss"], rtol=1e-6)


def test_epoch_batches_cover_every_rating_once_and_pad_with_mask_zero():
  index, mask = fz.epoch_batches(10, 4, seed=0, epoch=1)
  assert index.shape == mask.shape == (3, 4)
  assert sorted(index[mask == 1].tolist()) == list(range(10))
  assert mask.sum() == 10 and np.all(mask.reshape(-1)[10:] == 0)
  again, _ = fz.epoch_batches(10, 4, seed=0, epoch=1)
  other, _ = fz.epoch_batches(10, 4, seed=0, epoch=2)
  np.testing.assert_array_equal(index, again)
  assert not np.array_equal(index, other)


def test_svd_epoch_compiles_once():
  rng = np.random.default_rng(6)
  user, item, target, factors = _problem(rng)
  tx = optax.sgd(0.01)
  epoch_fn = fz.make_svd_epoch(tx, reg=0.1, learn_biases=True)
  state, opt_state = factors, tx.init(factors)
  for epoch in (1, 2, 3):
    index, mask = fz.epoch_batches(len(user), 8, seed=0, epoch=epoch)
    state, opt_state, sums = epoch_fn(state, opt_state, user, item, target, index, mask)
    assert float(sums["count"]) == len(user)
  assert epoch_fn._cache_size() == 1  # pylint: disable=protected-access


def test_offsets_are_train_means_and_zero_for_unseen_rows():
  user = np.array([0, 0, 1, 1, 1], np.int32)
  item = np.array([0, 1, 0, 1, 2], np.int32)
  value = np.array([1.0, 0.0, -1.0, 0.5, 0.5], np.float32)
  off = fz.fit_offsets(user, item, value, 3, 4, use_biases=True)
  mean = value.mean()
  np.testing.assert_allclose(off.mean, mean, rtol=1e-6)
  np.testing.assert_allclose(off.user_U, [0.5 - mean, 0.0 - mean, 0.0], atol=1e-6)
  np.testing.assert_allclose(off.item_I, [0.0 - mean, 0.25 - mean, 0.5 - mean, 0.0],
                             atol=1e-6)
  plain = fz.fit_offsets(user, item, value, 3, 4, use_biases=False)
  assert not np.any(plain.user_U) and not np.any(plain.item_I)
  np.testing.assert_allclose(fz.offset(off, user, item),
                             mean + np.asarray(off.user_U)[user] + np.asarray(off.item_I)[item],
                             rtol=1e-6)


def test_unit_scale_round_trips():
  r = np.array([1.0, 3.0, 5.0, 4.5])
  np.testing.assert_allclose(fz.to_unit_scale(r, 1, 5), [-1.0, 0.0, 1.0, 0.75])
  np.testing.assert_allclose(fz.from_unit_scale(fz.to_unit_scale(r, 1, 5), 1, 5), r,
                             rtol=1e-6)


def test_num_params_counts_biases_only_when_learnt():
  f = fz.init_factors(jax.random.key(0), 4, 3, 2)
  assert fz.num_params(f, learn_biases=False) == (4 + 3) * 2
  assert fz.num_params(f, learn_biases=True) == (4 + 3) * 3


def _low_rank(seed=0, num_users=60, num_items=40, rank=2, density=0.5):
  rng = np.random.default_rng(seed)
  truth = (rng.normal(size=(num_users, rank)) @ rng.normal(size=(rank, num_items))) / 2
  observed = rng.random(truth.shape) < density
  user, item = np.nonzero(observed)
  held_user, held_item = np.nonzero(~observed)
  return (user.astype(np.int32), item.astype(np.int32), truth[observed].astype(np.float32),
          held_user, held_item, truth[~observed])


def test_als_recovers_a_low_rank_matrix():
  user, item, target, hu, hi, held = _low_rank()
  factors = fz.init_factors(jax.random.key(0), 60, 40, 2)
  by_user = fz.chunk_by_row(user, item, target, 60, chunk=256)
  by_item = fz.chunk_by_row(item, user, target, 40, chunk=256)
  iteration = fz.make_als_iteration(reg=1e-4)
  for _ in range(30):
    factors = iteration(factors, by_user, by_item)
  pred = fz.residual_prediction(factors, hu, hi)
  rmse = float(np.sqrt(np.mean((np.asarray(pred) - held) ** 2)))
  assert rmse < 0.05 * held.std(), rmse


def test_svd_recovers_a_low_rank_matrix():
  user, item, target, hu, hi, held = _low_rank()
  factors = fz.init_factors(jax.random.key(0), 60, 40, 2)
  tx = optax.sgd(0.02, momentum=0.5)
  epoch_fn = fz.make_svd_epoch(tx, reg=1e-4, learn_biases=True)
  opt_state = tx.init(factors)
  for epoch in range(1, 121):
    index, mask = fz.epoch_batches(len(target), 64, seed=0, epoch=epoch)
    factors, opt_state, _ = epoch_fn(factors, opt_state, user, item, target, index, mask)
  pred = fz.residual_prediction(factors, hu, hi)
  rmse = float(np.sqrt(np.mean((np.asarray(pred) - held) ** 2)))
  assert rmse < 0.1 * held.std(), rmse
