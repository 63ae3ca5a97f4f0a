import jax
import jax.numpy as jnp
import numpy as np
import pytest

from autorec_jax.models import losses

def _data():
  rng = np.random.default_rng(0)
  pred = rng.normal(size=(5, 7)).astype(np.float32)
  target = rng.normal(size=(5, 7)).astype(np.float32)
  mask = (rng.random((5, 7)) < 0.4).astype(np.float32)
  return pred, target, mask


def test_masked_sse_matches_numpy_under_jit():
  pred, target, mask = _data()
  sse, n = jax.jit(losses.masked_sse)(pred, target, mask)
  np.testing.assert_allclose(sse, np.sum(mask * (pred - target) ** 2), rtol=1e-6)
  assert float(n) == mask.sum()
  sae, _ = jax.jit(losses.masked_sae)(pred, target, mask)
  np.testing.assert_allclose(sae, np.sum(mask * np.abs(pred - target)), rtol=1e-6)
  mse = jax.jit(losses.masked_mse)(pred, target, mask)
  np.testing.assert_allclose(mse, np.sum(mask * (pred - target) ** 2) / mask.sum(),
                             rtol=1e-6)


def test_unobserved_entries_carry_no_gradient_even_if_nan():
  pred, target, mask = _data()
  target = np.where(mask > 0, target, np.nan).astype(np.float32)
  g = jax.grad(lambda p: losses.masked_mse(p, target, mask))(jnp.asarray(pred))
  assert bool(jnp.all(jnp.isfinite(g)))
  assert bool(jnp.all(jnp.where(mask == 0, g == 0, True)))


def test_all_zero_mask_is_finite_with_zero_gradient():
  pred, target, _ = _data()
  zeros = np.zeros_like(pred)
  value, g = jax.value_and_grad(lambda p: losses.masked_mse(p, target, zeros))(
      jnp.asarray(pred))
  assert float(value) == 0.0 and not bool(jnp.any(g))


def test_shape_mismatch_raises():
  pred, target, mask = _data()
  with pytest.raises(ValueError, match="equal shapes"):
    losses.masked_sse(pred, target[:, :3], mask)


def test_denoising_loss_weighs_corrupted_and_clean_entries():
  pred, target, mask = _data()
  rng = np.random.default_rng(1)
  corrupted = mask * (rng.random(mask.shape) < 0.5)
  total, count = jax.jit(lambda *a: losses.denoising_sse(*a, alpha=2.0, beta=0.5))(
      pred, target, mask, corrupted)
  sq = (pred - target) ** 2
  expected = 2.0 * np.sum(corrupted * sq) + 0.5 * np.sum((mask - corrupted) * sq)
  np.testing.assert_allclose(total, expected, rtol=1e-5)
  assert float(count) == mask.sum()


def test_denoising_loss_with_alpha_equal_beta_is_masked_sse():
  pred, target, mask = _data()
  corrupted = mask * 0.0
  a = losses.denoising_sse(pred, target, mask, corrupted, alpha=1.0, beta=1.0)
  b = losses.masked_sse(pred, target, mask)
  np.testing.assert_allclose(a[0], b[0], rtol=1e-6)
