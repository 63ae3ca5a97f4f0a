import jax
import jax.numpy as jnp
import numpy as np
import pytest

from autorec_jax.models.autoencoder import ACTIVATIONS, AutoEncoder, count_params


def _init(model, width=10):
  return model.init(jax.random.key(0), jnp.zeros((2, width)), train=False)["params"]


def test_shapes_mirror_the_encoder():
  params = _init(AutoEncoder(hidden=(8, 4)), width=10)
  assert params["enc0_kernel"].shape == (10, 8)
  assert params["enc1_kernel"].shape == (8, 4)
  assert params["dec0_kernel"].shape == (4, 8)
  assert params["dec1_kernel"].shape == (10, 8)  # the output layer's is items-major
  assert params["dec1_bias"].shape == (10,)
  assert count_params(params) == 10 * 8 + 8 + 8 * 4 + 4 + 4 * 8 + 8 + 8 * 10 + 10


def test_deeprec_netflix_full_parameter_count():
  # DeepRec table 2: n=17,768 with 2 layers of 128 (n,128,n) has 4,566,504 params.
  model = AutoEncoder(hidden=(128,))
  shapes = jax.eval_shape(lambda: model.init(jax.random.key(0), jnp.zeros((1, 17768)),
                                             train=False))["params"]
  assert count_params(shapes) == 4_566_504


def test_tied_decoder_reuses_transposed_kernels():
  model = AutoEncoder(hidden=(8, 4), tied=True, activation="identity")
  params = _init(model)
  assert not any(k.startswith("dec") and k.endswith("kernel") for k in params)
  x = jax.random.normal(jax.random.key(1), (3, 10))
  p = params
  h = (x @ p["enc0_kernel"] + p["enc0_bias"][None]) @ p["enc1_kernel"] + p["enc1_bias"][None]
  y = (h @ p["enc1_kernel"].T + p["dec0_bias"][None]) @ p["enc0_kernel"].T + p["dec1_bias"][None]
  np.testing.assert_allclose(model.apply({"params": params}, x, train=False), y,
                             rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("activation", sorted(ACTIVATIONS))
def test_every_activation_runs_and_is_finite(activation):
  model = AutoEncoder(hidden=(6,), activation=activation, output_activation=True)
  params = _init(model)
  y = model.apply({"params": params}, jnp.ones((2, 10)), train=False)
  assert y.shape == (2, 10) and bool(jnp.all(jnp.isfinite(y)))


def test_linear_output_layer_by_default():
  model = AutoEncoder(hidden=(6,), activation="sigmoid")
  params = _init(model)
  params = jax.tree.map(lambda p: p, params)
  params["dec0_bias"] = params["dec0_bias"] + 7.0  # beyond sigmoid's range
  y = model.apply({"params": params}, jnp.zeros((1, 10)), train=False)
  assert float(y.min()) > 6.0


def test_dropout_only_in_training_and_keyed():
  model = AutoEncoder(hidden=(32,), dropout=0.5)
  params = _init(model)
  x = jnp.ones((4, 10))
  eval1 = model.apply({"params": params}, x, train=False)
  eval2 = model.apply({"params": params}, x, train=False)
  np.testing.assert_array_equal(eval1, eval2)
  t1 = model.apply({"params": params}, x, train=True, rngs={"dropout": jax.random.key(1)})
  t1b = model.apply({"params": params}, x, train=True, rngs={"dropout": jax.random.key(1)})
  t2 = model.apply({"params": params}, x, train=True, rngs={"dropout": jax.random.key(2)})
  np.testing.assert_array_equal(t1, t1b)
  assert not np.allclose(t1, t2)


def test_fan_in_init_bounds():
  params = _init(AutoEncoder(hidden=(50,), kernel_init="fan_in"), width=400)
  bound = 1 / np.sqrt(400)
  k = np.asarray(params["enc0_kernel"])
  assert np.abs(k).max() <= bound + 1e-7 and np.abs(k).max() > 0.9 * bound


def test_empty_hidden_is_an_error():
  with pytest.raises(ValueError, match="hidden"):
    _init(AutoEncoder(hidden=()))


def test_bfloat16_compute_keeps_float32_params_and_is_close_to_float32():
  x = jax.random.normal(jax.random.key(2), (4, 10))
  full = AutoEncoder(hidden=(8, 4), activation="selu")
  mixed = AutoEncoder(hidden=(8, 4), activation="selu", compute_dtype="bfloat16")
  params = _init(full)
  assert jax.tree.structure(_init(mixed)) == jax.tree.structure(params)
  y32 = full.apply({"params": params}, x, train=False)
  y16 = mixed.apply({"params": params}, x, train=False)
  assert y16.dtype == jnp.float32
  # bf16 keeps 8 significant bits: products are within ~1% of float32, not equal.
  np.testing.assert_allclose(y16, y32, rtol=0.05, atol=0.05)
  assert float(jnp.max(jnp.abs(y16 - y32))) > 0.0

  def loss(model, p):
    return jnp.mean(model.apply({"params": p}, x, train=False) ** 2)

  g32 = jax.grad(lambda p: loss(full, p))(params)
  g16 = jax.grad(lambda p: loss(mixed, p))(params)
  for k in params:
    assert g16[k].dtype == jnp.float32, k
    np.testing.assert_allclose(g16[k], g32[k], rtol=0.1, atol=0.02, err_msg=k)
