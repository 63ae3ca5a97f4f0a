"""The kernelized layer and network: mask, penalty, plain-dense equivalence, gradients."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from autorec_jax.models import kernel_net
from autorec_jax.models.kernel_net import KernelAutoEncoder, kernel_mask, penalty


def _init(model, width, seed=0):
  return model.init(jax.random.key(seed), jnp.zeros((2, width)))["params"]


def test_mask_is_in_unit_interval_and_zero_beyond_unit_distance():
  rng = np.random.default_rng(0)
  u = jnp.asarray(rng.normal(scale=0.7, size=(30, 3)), jnp.float32)
  v = jnp.asarray(rng.normal(scale=0.7, size=(20, 3)), jnp.float32)
  mask = np.asarray(kernel_mask(u, v))
  dist = np.linalg.norm(np.asarray(u)[:, None] - np.asarray(v)[None], axis=-1)
  assert mask.min() >= 0.0 and mask.max() <= 1.0
  assert np.all(mask[dist >= 1.0] == 0.0)
  assert (dist >= 1.0).any() and (dist < 1.0).any()
  np.testing.assert_allclose(mask, np.maximum(0, 1 - dist ** 2), atol=1e-6)


def test_zero_points_give_the_plain_dense_network():
  model = KernelAutoEncoder(hidden=(7, 5), kernel_dim=3)
  plain = KernelAutoEncoder(hidden=(7, 5), kernel_dim=0)
  params = _init(model, 11)
  zeroed = {k: (jnp.zeros_like(v) if k.endswith(("_u", "_v")) else v)
            for k, v in params.items()}
  dense = {k: v for k, v in params.items() if not k.endswith(("_u", "_v"))}
  x = jnp.asarray(np.random.default_rng(1).normal(size=(4, 11)), jnp.float32)
  np.testing.assert_allclose(model.apply({"params": zeroed}, x),
                             plain.apply({"params": dense}, x), rtol=1e-6)


def test_gradients_are_finite_at_init():
  """Every pair starts at distance ~0, where a norm's gradient would be NaN."""
  model = KernelAutoEncoder(hidden=(6,), kernel_dim=5)
  params = _init(model, 9)
  x = jnp.asarray(np.random.default_rng(2).integers(0, 6, size=(5, 9)), jnp.float32)

  def loss(p):
    return jnp.sum(jnp.square(model.apply({"params": p}, x) - x)) + penalty(
        p, lambda_s=0.01, lambda_2=1.0)

  grads = jax.grad(loss)(params)
  for name, g in grads.items():
    assert np.all(np.isfinite(np.asarray(g))), name
  assert float(jnp.abs(grads["layer0_u"]).sum()) > 0


def test_penalty_by_hand_on_a_two_by_two_layer():
  w = jnp.asarray([[1.0, 2.0], [3.0, 4.0]])
  u = jnp.asarray([[0.0], [0.5]])
  v = jnp.asarray([[0.0], [2.0]])
  # w_hat = max(0, 1 - (u_i - v_j)^2): [[1, 0], [0.75, 0]]
  params = {"out_kernel": w, "out_bias": jnp.zeros(2), "out_u": u, "out_v": v}
  expected = 0.5 * 3.0 * (1 + 4 + 9 + 16) + 0.5 * 0.1 * (1.0 + 0.75 ** 2)
  assert float(penalty(params, lambda_s=0.1, lambda_2=3.0)) == pytest.approx(expected)


def test_only_the_listed_layers_are_kernelized():
  model = KernelAutoEncoder(hidden=(4, 3), kernel_dim=2, kernelized=(2,))
  params = _init(model, 6)
  assert "out_u" in params and "layer0_u" not in params and "layer1_u" not in params


def test_network_shape_is_not_mirrored():
  params = _init(KernelAutoEncoder(hidden=(8, 4)), 10)
  assert params["layer0_kernel"].shape == (10, 8)
  assert params["layer1_kernel"].shape == (8, 4)
  assert params["out_kernel"].shape == (4, 10)


def test_encode_then_decode_is_apply():
  model = KernelAutoEncoder(hidden=(6, 4), kernel_dim=3)
  params = _init(model, 8)
  x = jnp.asarray(np.random.default_rng(3).normal(size=(3, 8)), jnp.float32)
  np.testing.assert_allclose(model.decode(params, model.encode(params, x)),
                             model.apply({"params": params}, x), rtol=1e-5, atol=1e-6)
  assert model.output_kernel(params).shape == (8, 4)


def test_global_kernel_parameter_exists_only_for_glocal():
  assert kernel_net.GLOBAL_KERNEL not in _init(KernelAutoEncoder(hidden=(4,)), 5)
  params = _init(KernelAutoEncoder(hidden=(4,), global_kernel_rows=7), 5)
  assert params[kernel_net.GLOBAL_KERNEL].shape == (7, 9)
