import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.sparse as sp

from autorec_jax.models.autoencoder import ACTIVATIONS, AutoEncoder
from autorec_jax.serving import fold_in


def _module(width=30, **kw):
  module = AutoEncoder(**{"hidden": (5,), "activation": "sigmoid", **kw})
  params = module.init(jax.random.key(0), jnp.zeros((1, width)), train=False)["params"]
  return module, params


VARIANTS = [{}, {"hidden": (6, 4), "activation": "selu"}, {"tied": True},
            {"hidden": (6, 4), "tied": True, "activation": "elu"},
            {"output_activation": True, "activation": "tanh"}]


@pytest.mark.parametrize("kw", VARIANTS)
def test_encode_decode_and_penultimate_mirror_the_module(kw):
  module, params = _module(**kw)
  x = jax.random.normal(jax.random.key(1), (7, 30))
  expected = module.apply({"params": params}, x, train=False)
  code = module.encode(params, x)
  assert code.shape == (7, module.hidden[-1])
  np.testing.assert_allclose(module.decode(params, code), expected, atol=1e-6)
  h, kernel, bias = module.penultimate(params, x)
  out = h @ kernel + bias[None, :]
  if module.output_activation:
    out = ACTIVATIONS[module.activation](out)
  np.testing.assert_allclose(out, expected, atol=1e-6)


def test_gaussian_prior_and_map_gauss_newton_on_a_known_problem():
  rng = np.random.default_rng(0)
  samples = rng.normal(size=(400, 3)) * [1.0, 2.0, 0.5] + [1.0, -1.0, 0.0]
  mean, precision = fold_in.gaussian_prior(samples)
  np.testing.assert_allclose(mean, samples.mean(0))
  np.testing.assert_allclose(np.linalg.inv(precision), np.cov(samples, rowvar=False),
                             rtol=1e-4)
  # A nonlinear least-squares problem with a negligible prior: f(w) = tanh(A w).
  a = rng.normal(size=(40, 3))
  w_true = np.array([0.3, -0.5, 0.2])
  f = lambda w: np.tanh(a @ w)
  f_and_jac = lambda w: (f(w), a * (1 - np.tanh(a @ w) ** 2)[:, None])
  w = fold_in.map_gauss_newton(f, f_and_jac, f(w_true), np.zeros(3), np.zeros(3),
                               np.eye(3) * 1e-9, 1.0)
  np.testing.assert_allclose(w, w_true, atol=1e-6)
  # A strong prior holds the estimate at the prior mean.
  w = fold_in.map_gauss_newton(f, f_and_jac, f(w_true), np.zeros(3), np.ones(3),
                               np.eye(3) * 1e9, 1.0)
  np.testing.assert_allclose(w, np.ones(3), atol=1e-6)


def _train_matrix(rows=60, cols=30, seed=0):
  rng = np.random.default_rng(seed)
  dense = np.where(rng.random((rows, cols)) < 0.4, rng.normal(size=(rows, cols)), 0.0)
  return dense.astype(np.float32)


def _readout(module, params):
  dense = _train_matrix()
  dense[-3:] = 0.0  # three items without train ratings
  x = sp.csr_matrix(dense)
  trained = np.diff(x.indptr) > 0
  return fold_in.ReadoutFoldIn(
      module, params, x, mid=3.0, half=2.0, item_bias=np.linspace(-0.2, 0.2, x.shape[0]),
      trained_items=trained, fallback_I=np.full(x.shape[0], 3.3), batch_size=16)


def test_readout_prior_is_the_trained_users_decoder_columns():
  module, params = _module()
  f = _readout(module, params)
  columns = np.concatenate([np.asarray(params["dec0_kernel"]),  # items-major [N, H]
                            np.asarray(params["dec0_bias"])[:, None]], axis=1)
  np.testing.assert_allclose(f.prior_mean_H, columns.mean(0), atol=1e-6)
  assert f.codes_IxH.shape == (60, 6) and np.all(f.codes_IxH[:, -1] == 1.0)
  assert f.noise_var > 0


def test_linear_readout_fit_is_the_bayesian_posterior_mean():
  module, params = _module()
  f = _readout(module, params)
  items = np.arange(0, 40, 3)
  y = np.random.default_rng(2).normal(size=len(items))
  phi = f.codes_IxH[items]
  a = phi.T @ phi / f.noise_var + f.prior_precision_HxH
  b = phi.T @ y / f.noise_var + f.prior_precision_HxH @ f.prior_mean_H
  np.testing.assert_allclose(f.fit(items, y), np.linalg.solve(a, b), rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("kw", [{}, {"output_activation": True, "activation": "tanh"}])
def test_readout_fit_recovers_an_exact_readout_when_noise_is_small(kw):
  module, params = _module(**kw)
  f = _readout(module, params)
  f.noise_var = 1e-12  # the data term dominates the prior: least squares
  w_true = np.random.default_rng(3).normal(size=f.codes_IxH.shape[1]) * 0.5
  items = np.arange(0, 50)
  np.testing.assert_allclose(f.fit(items, f.outputs(w_true)[items]), w_true, atol=1e-3)


def test_readout_scores_ignore_untrained_items_and_fall_back_without_ratings():
  module, params = _module()
  f = _readout(module, params)
  s = f.scores(np.array([0, 4, 59]), np.array([5.0, 4.0, 1.0]))  # 59 has no train rating
  s2 = f.scores(np.array([0, 4]), np.array([5.0, 4.0]))
  np.testing.assert_allclose(s[:57], s2[:57], rtol=1e-6)
  np.testing.assert_allclose(s2[57:], 4.5)  # untrained items: the user's mean
  np.testing.assert_allclose(f.scores(np.array([59]), np.array([2.0])), 3.3)
  y = (np.array([5.0, 4.0]) - 3.0) / 2.0 - f.item_bias[[0, 4]]
  expected = (f.outputs(f.fit(np.array([0, 4]), y)) + f.item_bias) * 2.0 + 3.0
  np.testing.assert_allclose(s2[:57], expected[:57], rtol=1e-5)


def _code_fold_in(module, params, row_bias=False):
  dense = _train_matrix(rows=80, cols=30)
  dense[:, -2:] = 0.0  # two items without train ratings
  x = sp.csr_matrix(dense)
  trained = np.diff(x.tocsc().indptr) > 0
  return fold_in.CodeFoldIn(module, params, x, mid=3.0, half=2.0, row_bias=row_bias,
                            trained_items=trained, fallback_I=np.full(30, 3.3),
                            batch_size=16), dense


@pytest.mark.parametrize("kw", [{}, {"hidden": (6, 4), "activation": "selu"}])
def test_code_fold_in_prior_and_plain_encoding(kw):
  module, params = _module(**kw)
  f, dense = _code_fold_in(module, params)
  codes = np.asarray(module.encode(params, jnp.asarray(dense)))
  np.testing.assert_allclose(f.prior_mean_C, codes.mean(0), atol=1e-5)
  items = np.array([1, 4, 9])
  y = np.array([0.5, -1.0, 1.0])
  x = np.zeros((1, 30), np.float32)
  x[0, items] = y
  np.testing.assert_allclose(f.fit(items, y, refine=False),
                             np.asarray(module.encode(params, jnp.asarray(x)))[0],
                             atol=1e-6)


def test_refined_code_recovers_a_code_that_explains_the_ratings():
  module, params = _module(hidden=(6, 4), activation="selu")
  f, _ = _code_fold_in(module, params)
  f.noise_var = 1e-10
  c_true = f.prior_mean_C + 0.3
  y = np.asarray(module.decode(params, jnp.asarray(c_true[None], jnp.float32)))[0]
  items = np.arange(0, 28)
  c = f.fit(items, y[items])
  np.testing.assert_allclose(c, c_true, atol=1e-3)


def test_code_scores_map_back_to_ratings_and_fall_back():
  module, params = _module()
  f, _ = _code_fold_in(module, params, row_bias=True)
  items, ratings = np.array([0, 3, 29]), np.array([5.0, 2.0, 4.0])  # 29: untrained
  s = f.scores(items, ratings)
  scaled = (ratings[:2] - 3.0) / 2.0
  code = f.fit(items[:2], scaled - scaled.mean())
  out = np.asarray(module.decode(params, jnp.asarray(code[None], jnp.float32)))[0]
  np.testing.assert_allclose(s[:28], ((out + scaled.mean()) * 2.0 + 3.0)[:28], rtol=1e-5)
  np.testing.assert_allclose(s[28:], 3.5)  # untrained items: the mean of usable ratings
  np.testing.assert_allclose(f.scores(np.array([29]), np.array([1.0])), 3.3)
  # The refined code has a lower posterior objective than the plain encoding.
  y = scaled - scaled.mean()
  def objective(c):
    o = np.asarray(module.decode(params, jnp.asarray(c[None], jnp.float32)))[0]
    d = c - f.prior_mean_C
    return np.sum((o[items[:2]] - y) ** 2) / f.noise_var + d @ f.prior_precision_CxC @ d
  assert objective(code) < objective(f.fit(items[:2], y, refine=False))


def test_from_predictor_checks_the_orientation():
  class Fake:
    orientation = "user"
  with pytest.raises(ValueError, match="item-based"):
    fold_in.ReadoutFoldIn.from_predictor(Fake())
  Fake.orientation = "item"
  with pytest.raises(ValueError, match="user-based"):
    fold_in.CodeFoldIn.from_predictor(Fake())
