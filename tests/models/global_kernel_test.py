"""GLocal-K's global kernel: the convolution, the pooled kernel, and the input rows."""

import jax
import jax.numpy as jnp
import numpy as np
import scipy.signal
import scipy.sparse as sp

from autorec_jax.models import global_kernel as gk
from autorec_jax.models.kernel_net import GLOBAL_KERNEL, KernelAutoEncoder


def test_centre_delta_kernel_gives_relu_of_the_matrix():
  r = np.random.default_rng(0).normal(size=(6, 9)).astype(np.float32)
  delta = np.zeros((3, 3), np.float32)
  delta[1, 1] = 1.0
  np.testing.assert_allclose(gk.convolve(jnp.asarray(r), jnp.asarray(delta)),
                             np.maximum(r, 0), rtol=1e-6)


def test_convolution_is_scipy_correlate2d_then_relu():
  rng = np.random.default_rng(1)
  r = rng.integers(0, 6, size=(7, 11)).astype(np.float32)
  k = rng.normal(size=(3, 3)).astype(np.float32)
  expected = np.maximum(scipy.signal.correlate2d(r, k, mode="same", boundary="fill"), 0)
  np.testing.assert_allclose(gk.convolve(jnp.asarray(r), jnp.asarray(k)), expected,
                             rtol=1e-5, atol=1e-5)


def test_row_means_through_the_linear_output_equal_the_dense_mean():
  model = KernelAutoEncoder(hidden=(5, 4), kernel_dim=2, global_kernel_rows=6)
  x = jnp.asarray(np.random.default_rng(2).integers(0, 6, size=(6, 8)), jnp.float32)
  params = model.init(jax.random.key(0), x)["params"]
  np.testing.assert_allclose(gk.row_means(model, params, x),
                             model.apply({"params": params}, x).mean(axis=1), rtol=1e-5)


def test_kernel_is_the_scaled_pooled_product():
  p = jnp.asarray([1.0, 2.0])
  c = jnp.arange(18, dtype=jnp.float32).reshape(2, 9)
  np.testing.assert_allclose(gk.kernel(p, c, dot_scale=0.5, size=3),
                             (0.5 * (c[0] + 2 * c[1])).reshape(3, 3))


def test_input_rows_convolve_only_for_a_glocal_model():
  csr = sp.random(6, 8, density=0.4, random_state=3, format="csr", dtype=np.float32) * 5
  plain = KernelAutoEncoder(hidden=(4,))
  params = plain.init(jax.random.key(0), jnp.zeros((1, 8)))["params"]
  assert gk.input_rows(plain, params, csr, dot_scale=1.0) is csr
  glocal = KernelAutoEncoder(hidden=(4,), global_kernel_rows=6)
  gparams = glocal.init(jax.random.key(0), jnp.zeros((1, 8)))["params"]
  rows = gk.input_rows(glocal, gparams, csr, dot_scale=1.0)
  k = gk.kernel(gk.row_means(glocal, gparams, jnp.asarray(csr.toarray())),
                gparams[GLOBAL_KERNEL], dot_scale=1.0, size=3)
  np.testing.assert_allclose(rows.toarray(), gk.convolve(jnp.asarray(csr.toarray()), k),
                             rtol=1e-5, atol=1e-6)
