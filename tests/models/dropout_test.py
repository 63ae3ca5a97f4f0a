"""The fused Threefry dropout: the hash against Random123's known answers, the mask's
statistics, and the flax Dropout contract (scaling, determinism, keys)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from autorec_jax.models.dropout import Dropout, random_bits, threefry2x32

# Random123's known-answer vectors for Threefry-2x32 with 20 rounds (kat_vectors):
# (key, counter) -> output.
KNOWN_ANSWERS = [
    ((0x00000000, 0x00000000), (0x00000000, 0x00000000), (0x6B200159, 0x99BA4EFE)),
    ((0xFFFFFFFF, 0xFFFFFFFF), (0xFFFFFFFF, 0xFFFFFFFF), (0x1CB996FC, 0xBB002BE7)),
    ((0x13198A2E, 0x03707344), (0x243F6A88, 0x85A308D3), (0xC4923A9C, 0x483DF7A0)),
]


@pytest.mark.parametrize("key,counter,want", KNOWN_ANSWERS)
def test_threefry_matches_random123(key, counter, want):
  u32 = lambda v: jnp.asarray(v, jnp.uint32)  # pylint: disable=unnecessary-lambda-assignment
  got = jax.jit(threefry2x32)(u32(key[0]), u32(key[1]), u32(counter[0]), u32(counter[1]))
  assert (int(got[0]), int(got[1])) == want


def _apply(x, rate, key, deterministic=False):
  return Dropout(rate=rate, deterministic=deterministic).apply({}, x, rngs={"dropout": key})


@pytest.mark.parametrize("rate", [0.2, 0.5, 0.8])
def test_keeps_the_right_share_and_scales_the_kept_units(rate):
  x = jnp.full((256, 4096), 3.0)
  y = np.asarray(jax.jit(_apply, static_argnums=1)(x, rate, jax.random.key(0)))
  kept = y != 0.0
  keep = 1.0 - rate
  sigma = np.sqrt(keep * (1 - keep) / kept.size)
  assert abs(kept.mean() - keep) < 5 * sigma
  np.testing.assert_allclose(y[kept], 3.0 / keep, rtol=1e-6)
  # no visible structure: every row and every column keeps about the same share
  assert abs(kept.mean(axis=1) - keep).max() < 6 * np.sqrt(keep * (1 - keep) / 4096)
  assert abs(kept.mean(axis=0) - keep).max() < 6 * np.sqrt(keep * (1 - keep) / 256)


def test_keys_decide_the_mask():
  x = jnp.ones((64, 512))
  a = _apply(x, 0.5, jax.random.key(1))
  np.testing.assert_array_equal(a, _apply(x, 0.5, jax.random.key(1)))
  b = _apply(x, 0.5, jax.random.key(2))
  agree = float(jnp.mean((a != 0) == (b != 0)))
  assert 0.45 < agree < 0.55  # independent masks agree on half the units


def test_off_while_evaluating_and_at_rate_zero():
  x = jnp.arange(12.0).reshape(3, 4)
  np.testing.assert_array_equal(_apply(x, 0.8, jax.random.key(0), deterministic=True), x)
  np.testing.assert_array_equal(_apply(x, 0.0, jax.random.key(0)), x)


def test_bits_of_any_shape_and_prng_implementation():
  for key in (jax.random.key(0), jax.random.key(0, impl="rbg")):
    bits = random_bits(key, (3, 5, 7))
    assert bits.shape == (3, 5, 7) and bits.dtype == jnp.uint32
    assert len(np.unique(np.asarray(bits))) == 105
