"""Full-batch L-BFGS: the minimizer, and the objective on both input paths."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.sparse as sp

from autorec_jax.models.kernel_net import KernelAutoEncoder, penalty
from autorec_jax.runtime import parallel
from autorec_jax.training import fast_path, lbfgs


def test_lbfgs_reaches_the_minimum_of_a_quadratic():
  rng = np.random.default_rng(0)
  a = jnp.asarray(rng.normal(size=(12, 8)), jnp.float32)
  b = jnp.asarray(rng.normal(size=12), jnp.float32)

  def loss(p):
    return 0.5 * jnp.sum(jnp.square(a @ jnp.concatenate([p["x"], p["y"]]) - b))

  params = {"x": jnp.zeros(5), "y": jnp.zeros(3)}
  out, value = lbfgs.Minimizer(loss, memory=10).round(params, 40)
  expected = np.linalg.lstsq(np.asarray(a), np.asarray(b), rcond=None)[0]
  np.testing.assert_allclose(np.concatenate([out["x"], out["y"]]), expected, atol=1e-4)
  assert value == pytest.approx(float(loss({"x": expected[:5], "y": expected[5:]})),
                                rel=1e-4)


def _matrix():
  rng = np.random.default_rng(1)
  dense = rng.integers(1, 6, size=(9, 13)).astype(np.float32)
  dense[rng.random(dense.shape) > 0.3] = 0.0
  return sp.csr_matrix(dense)


@pytest.mark.parametrize("global_kernel", [False, True])
def test_dense_objective_is_half_the_squared_error_plus_penalties(global_kernel):
  csr = _matrix()
  model = KernelAutoEncoder(hidden=(6, 4), kernel_dim=3,
                            global_kernel_rows=csr.shape[0] if global_kernel else 0)
  params = model.init(jax.random.key(0), jnp.zeros((1, csr.shape[1])))["params"]
  data = lbfgs.FullBatch(csr, sparse=False, need_dense=True, mesh=parallel.make_mesh())
  loss = lbfgs.make_objective(model, data, lambda_s=0.1, lambda_2=2.0,
                              global_kernel=global_kernel, dot_scale=0.5)
  x = jnp.asarray(csr.toarray())
  if global_kernel:
    from autorec_jax.models import global_kernel as gk  # pylint: disable=import-outside-toplevel
    x = gk.convolve(x, gk.model_kernel(model, params, x, dot_scale=0.5))
  pred = model.apply({"params": params}, x)
  mask = csr.toarray() > 0
  expected = 0.5 * np.sum(np.where(mask, pred - csr.toarray(), 0.0) ** 2) + float(
      penalty(params, lambda_s=0.1, lambda_2=2.0))
  assert float(loss(params)) == pytest.approx(expected, rel=1e-5)


@pytest.mark.native
@pytest.mark.parametrize("global_kernel", [False, True])
def test_sparse_objective_equals_the_dense_one(global_kernel):
  if not fast_path.sparse_ops_available()[0]:
    pytest.fail("the native sparse ops should run on this machine")
  csr = _matrix()
  model = KernelAutoEncoder(hidden=(6, 4), kernel_dim=3,
                            global_kernel_rows=csr.shape[0] if global_kernel else 0)
  params = model.init(jax.random.key(0), jnp.zeros((1, csr.shape[1])))["params"]
  mesh = parallel.make_mesh()
  values = []
  for sparse in (False, True):
    data = lbfgs.FullBatch(csr, sparse=sparse, need_dense=global_kernel, mesh=mesh)
    loss = lbfgs.make_objective(model, data, lambda_s=0.1, lambda_2=2.0,
                                global_kernel=global_kernel, dot_scale=0.5)
    values.append(jax.value_and_grad(loss)(params))
  assert float(values[0][0]) == pytest.approx(float(values[1][0]), rel=1e-5)
  for name in params:
    np.testing.assert_allclose(values[0][1][name], values[1][1][name], rtol=1e-4,
                               atol=1e-4, err_msg=name)
