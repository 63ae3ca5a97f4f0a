import jax
import jax.numpy as jnp
import numpy as np
import pytest

from autorec_jax.training import noise

def _input(rows=64, width=200, seed=0):
  rng = np.random.default_rng(seed)
  known = (rng.random((rows, width)) < 0.5).astype(np.float32)
  x = known * rng.uniform(-0.9, 0.9, (rows, width)).astype(np.float32)
  return jnp.asarray(x), jnp.asarray(known)


def test_masking_hides_about_the_fraction_and_only_known_entries():
  x, known = _input()
  out, corrupted = noise.corrupt(x, known, noise.NoiseConfig(masking=0.25), jax.random.key(0))
  c = np.asarray(corrupted)
  assert np.all(c <= np.asarray(known))
  assert c.sum() / np.asarray(known).sum() == pytest.approx(0.25, abs=0.02)
  assert np.all(np.asarray(out)[c > 0] == 0)
  np.testing.assert_array_equal(np.asarray(out)[c == 0], np.asarray(x)[c == 0])


def test_salt_and_pepper_uses_the_scale_ends():
  x, known = _input()
  cfg = noise.NoiseConfig(salt_pepper=0.3, low=-1.0, high=1.0)
  out, corrupted = noise.corrupt(x, known, cfg, jax.random.key(1))
  values = np.asarray(out)[np.asarray(corrupted) > 0]
  assert set(np.unique(values)) == {-1.0, 1.0}
  assert np.mean(values == 1.0) == pytest.approx(0.5, abs=0.05)


def test_gaussian_adds_noise_of_the_given_std():
  x, known = _input(rows=256)
  cfg = noise.NoiseConfig(gaussian=1.0, gaussian_std=0.1)
  out, corrupted = noise.corrupt(x, known, cfg, jax.random.key(2))
  np.testing.assert_array_equal(np.asarray(corrupted), np.asarray(known))
  diff = (np.asarray(out) - np.asarray(x))[np.asarray(known) > 0]
  assert diff.std() == pytest.approx(0.1, rel=0.05)


def test_mixture_bands_are_disjoint_and_sum():
  x, known = _input(rows=256)
  cfg = noise.NoiseConfig(masking=0.3, salt_pepper=0.1, low=-1.0, high=1.0)
  out, corrupted = noise.corrupt(x, known, cfg, jax.random.key(3))
  k, c, o = np.asarray(known), np.asarray(corrupted), np.asarray(out)
  assert c.sum() / k.sum() == pytest.approx(0.4, abs=0.02)
  masked = (c > 0) & (o == 0)
  salted = (c > 0) & (np.abs(o) == 1.0)
  assert np.all((masked | salted)[c > 0])
  assert masked.sum() / c.sum() == pytest.approx(0.75, abs=0.03)


def test_same_key_same_corruption_and_jittable():
  x, known = _input()
  cfg = noise.NoiseConfig(masking=0.2, gaussian=0.2, gaussian_std=0.5)
  f = jax.jit(lambda x, k, key: noise.corrupt(x, k, cfg, key))
  a = f(x, known, jax.random.key(5))
  b = f(x, known, jax.random.key(5))
  np.testing.assert_array_equal(a[0], b[0])


def test_invalid_fractions():
  with pytest.raises(ValueError, match="<= 1"):
    noise.NoiseConfig(masking=0.8, salt_pepper=0.3)
  with pytest.raises(ValueError, match="noise.masking"):
    noise.NoiseConfig(masking=-0.1)
