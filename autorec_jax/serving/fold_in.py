"""New users without retraining: a Bayesian fit of the model's user representation.

A user-based model (U-encoder) can simply encode a new user's ratings, and
`api.make_rows_fn` does that ("encode"). Measured on MovieLens-1M that is clearly
worse for users outside training than for the users it was trained on (the encoder
reproduces its training rows better than it encodes new ones: see
docs/using_a_trained_model.md). `CodeFoldIn` ("refine") starts from that code and
refines it: the code c is fitted to the ratings the user gave, through the frozen
decoder, as matrix factorisation folds in a user factor.

An item-based model (V-encoder) reads an item's ratings by the training users and
has one output unit per training user: a new user has neither an input weight nor
an output unit. Each output unit is a read-out of the item code h_i (the decoder's
last hidden layer, computed from the training users' ratings only):
pred_ui = act(h_i . w_u + b_u), act the identity unless model.output_activation.
`ReadoutFoldIn` fits a new user's own (w, b) to the items they rated, with the item
codes frozen. The new user's ratings do not enter the item codes (one user among
thousands barely moves them), which is the part of a retrained model this cannot
reproduce.

Both are the same estimate: the posterior mode of the user's parameters (the code,
or the read-out) under a Gaussian prior taken from the trained model (mean and
covariance of the training users' codes, or of their decoder columns), with the
model's mean squared error on the train ratings (model units) as the noise
variance, found by Gauss-Newton with step halving. With few ratings the prior holds
the estimate near an average user; with many, the fit approaches least squares. A
linear read-out is one exact solve. Ratings of items without train ratings are
ignored (no trained weights), and those items get the user's mean rating
(evaluate.py's fallback); a user left with no usable rating gets item means.
"""

from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np
import scipy.sparse as sp

from autorec_jax.evaluation import rmse as evaluate
from autorec_jax.models.autoencoder import ACTIVATIONS, AutoEncoder
from autorec_jax.serving import ids as ids_lib


def gaussian_prior(samples_SxD: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  """(mean, precision) of samples, with a little jitter so the precision exists."""
  samples = np.asarray(samples_SxD, np.float64)
  dim = samples.shape[1]
  cov = np.cov(samples, rowvar=False).reshape(dim, dim) if len(samples) > 1 else np.zeros(
      (dim, dim))
  jitter = 1e-6 * max(float(np.trace(cov)) / dim, 1e-12)
  return samples.mean(0), np.linalg.inv(cov + jitter * np.eye(dim))


def map_gauss_newton(f: Callable, f_and_jac: Callable, y: np.ndarray, start: np.ndarray,
                     prior_mean: np.ndarray, prior_precision: np.ndarray, noise_var: float,
                     *, iterations: int = 20) -> np.ndarray:
  """argmin_w |f(w) - y|^2 / noise_var + (w - mean)' precision (w - mean).

  Gauss-Newton from `start`, halving a step that does not lower the objective;
  stops when a step no longer moves w. `f_and_jac(w) -> (f(w), df/dw)`.
  """
  def objective(w, fw):
    d = w - prior_mean
    return float(np.sum((fw - y) ** 2) / noise_var + d @ prior_precision @ d)

  w = np.asarray(start, np.float64)
  fw, jac = f_and_jac(w)
  current = objective(w, fw)
  for _ in range(iterations):
    hess = jac.T @ jac / noise_var + prior_precision
    grad = jac.T @ (fw - y) / noise_var + prior_precision @ (w - prior_mean)
    step = np.linalg.solve(hess, grad)
    t = 1.0
    while True:
      candidate = w - t * step
      value = objective(candidate, f(candidate))
      if value <= current or t < 1e-3:
        break
      t *= 0.5
    if value > current:
      break
    w, current = candidate, value
    if np.linalg.norm(t * step) <= 1e-7 * (1.0 + np.linalg.norm(w)):
      break
    fw, jac = f_and_jac(w)
  return w


def _dense_rows(csr: sp.csr_matrix, rows: np.ndarray, batch: int) -> np.ndarray:
  x = np.zeros((batch, csr.shape[1]), np.float32)
  sub = csr[rows]
  x[np.repeat(np.arange(len(rows)), np.diff(sub.indptr)), sub.indices] = sub.data
  return x


def _fallback(predictor) -> tuple[np.ndarray, np.ndarray]:
  """(trained items, item means or the global mean) of a Predictor's run."""
  train = predictor.data.train
  trained = np.bincount(train.item, minlength=train.num_items) > 0
  stats = evaluate.TrainStats.from_ratings(train)
  return trained, np.where(trained, stats.item_mean, stats.global_mean)


class _FoldIn:
  """What both fold-ins share: the rating <-> model-unit mapping and the fallbacks."""

  def __init__(self, *, mid, half, trained_items, fallback_I):
    self.mid, self.half = float(mid), float(half)
    self.trained_items = np.asarray(trained_items, bool)
    self.fallback_I = np.asarray(fallback_I, np.float32)

  def _checked(self, items, values) -> tuple[np.ndarray, np.ndarray]:
    """Item indices in range and finite values, one per item (ValueError otherwise)."""
    items = ids_lib.check_indices(items, len(self.trained_items), "item")
    values = np.asarray(values, np.float64)
    if values.shape != items.shape:
      raise ValueError(f"got {len(items)} item indices and values of shape {values.shape}; "
                       "pass one value per item")
    if not np.all(np.isfinite(values)):
      raise ValueError("fold-in values must be finite numbers")
    if len(np.unique(items)) != len(items):
      raise ValueError("fold-in got an item index more than once")
    return items, values

  def _usable(self, items, ratings):
    items, ratings = self._checked(items, ratings)
    keep = self.trained_items[items]
    return items[keep], ratings[keep]

  def _finish(self, scores_I: np.ndarray, ratings: np.ndarray) -> np.ndarray:
    return np.where(self.trained_items, scores_I, ratings.mean()).astype(np.float32)


class CodeFoldIn(_FoldIn):
  """A new user of a user-based model: their code, encoded then refined.

  Attributes:
    prior_mean_C, prior_precision_CxC: the training users' codes' distribution.
    noise_var: the model's train MSE in model units.
  """

  def __init__(self, module: AutoEncoder, params, train_UxI: sp.csr_matrix, *,
               mid: float, half: float, row_bias: bool, trained_items: np.ndarray,
               fallback_I: np.ndarray, batch_size: int = 512):
    """`train_UxI` holds the model-unit train input rows (users x items)."""
    super().__init__(mid=mid, half=half, trained_items=trained_items, fallback_I=fallback_I)
    self.row_bias = bool(row_bias)
    self._encode = jax.jit(lambda x: module.encode(params, x))
    self._decode = jax.jit(lambda c: module.decode(params, c))
    self._jac = jax.jit(lambda c: jax.jacfwd(lambda v: module.decode(params, v[None])[0])(c))
    seen = np.flatnonzero(np.diff(train_UxI.indptr) > 0)
    codes, sse, count = [], 0.0, 0
    for start in range(0, len(seen), batch_size):
      rows = seen[start:start + batch_size]
      c = self._encode(jnp.asarray(_dense_rows(train_UxI, rows, batch_size)))
      out = np.asarray(self._decode(c), np.float64)
      codes.append(np.asarray(c, np.float64)[:len(rows)])
      sub = train_UxI[rows]
      err = out[np.repeat(np.arange(len(rows)), np.diff(sub.indptr)), sub.indices] - sub.data
      sse, count = sse + float(err @ err), count + len(err)
    self.prior_mean_C, self.prior_precision_CxC = gaussian_prior(np.concatenate(codes))
    self.noise_var = max(sse / max(count, 1), 1e-8)

  @classmethod
  def from_predictor(cls, predictor) -> "CodeFoldIn":
    if predictor.orientation != "user":
      raise ValueError("CodeFoldIn is for user-based models (ReadoutFoldIn for item-based)")
    pre = predictor.preprocessor
    trained, fallback = _fallback(predictor)
    return cls(predictor.model, predictor.params,
               predictor.train_rows,
               mid=pre.mid, half=pre.half, row_bias=bool(np.any(pre.row_bias)),
               trained_items=trained, fallback_I=fallback)

  def fit(self, items: np.ndarray, y: np.ndarray, *, refine: bool = True) -> np.ndarray:
    """The code for model-unit values `y` on item indices: encoded, then refined."""
    items, y = self._checked(items, y)
    x = np.zeros((1, len(self.trained_items)), np.float32)
    x[0, items] = y
    code = np.asarray(self._encode(jnp.asarray(x)), np.float64)[0]
    if not refine:
      return code

    def f(c):
      return np.asarray(self._decode(jnp.asarray(c[None], jnp.float32)), np.float64)[0, items]

    def f_and_jac(c):
      jac = np.asarray(self._jac(jnp.asarray(c, jnp.float32)), np.float64)[items]
      return f(c), jac

    return map_gauss_newton(f, f_and_jac, np.asarray(y, np.float64), code,
                            self.prior_mean_C, self.prior_precision_CxC, self.noise_var)

  def scores(self, items: np.ndarray, ratings: np.ndarray, *, refine: bool = True
             ) -> np.ndarray:
    """float32[I] unclipped predicted ratings of every item for a new user."""
    items, ratings = self._usable(items, ratings)
    if not len(items):
      return self.fallback_I.copy()
    scaled = (ratings - self.mid) / self.half
    bias = float(scaled.mean()) if self.row_bias else 0.0
    code = self.fit(items, scaled - bias, refine=refine)
    out = np.asarray(self._decode(jnp.asarray(code[None], jnp.float32)), np.float64)[0]
    return self._finish((out + bias) * self.half + self.mid, ratings)


class ReadoutFoldIn(_FoldIn):
  """A new user of an item-based model: their output unit, fitted on the item codes.

  Attributes:
    codes_IxH: float64 item codes with a trailing 1 (for the bias).
    prior_mean_H, prior_precision_HxH: the training users' decoder columns'
      distribution. noise_var: the model's train MSE in model units.
  """

  def __init__(self, module: AutoEncoder, params, train_IxU: sp.csr_matrix, *,
               mid: float, half: float, item_bias: np.ndarray, trained_items: np.ndarray,
               fallback_I: np.ndarray, batch_size: int = 512):
    """`train_IxU` holds the model-unit train input rows (items x training users);
    `fallback_I` is each item's prediction for a user with no usable rating."""
    super().__init__(mid=mid, half=half, trained_items=trained_items, fallback_I=fallback_I)
    self._act = ACTIVATIONS[module.activation] if module.output_activation else None
    self.item_bias = np.asarray(item_bias, np.float64)
    num_items, num_users = train_IxU.shape

    @jax.jit
    def codes_and_outputs(p, x_BxU):
      h, kernel, bias = module.penultimate(p, x_BxU)
      out = h @ kernel + bias[None, :]
      return h, (out if self._act is None else self._act(out))

    codes, sse, count = [], 0.0, 0
    for start in range(0, num_items, batch_size):
      rows = np.arange(start, min(start + batch_size, num_items))
      sub = train_IxU[rows]
      h, out = jax.device_get(codes_and_outputs(
          params, jnp.asarray(_dense_rows(train_IxU, rows, batch_size))))
      codes.append(np.asarray(h[:len(rows)], np.float64))
      r = np.repeat(np.arange(len(rows)), np.diff(sub.indptr))
      err = np.asarray(out, np.float64)[r, sub.indices] - sub.data
      sse, count = sse + float(err @ err), count + len(err)
    self.codes_IxH = np.concatenate([np.concatenate(codes), np.ones((num_items, 1))], 1)
    _, kernel, bias = module.decode_hidden(params, jnp.zeros((1, module.hidden[-1])))
    columns_UxH = np.concatenate([np.asarray(kernel, np.float64).T,
                                  np.asarray(bias, np.float64)[:, None]], axis=1)
    seen_users = np.diff(train_IxU.tocsc().indptr) > 0
    self.prior_mean_H, self.prior_precision_HxH = gaussian_prior(columns_UxH[seen_users])
    self.noise_var = max(sse / max(count, 1), 1e-8)

  @classmethod
  def from_predictor(cls, predictor) -> "ReadoutFoldIn":
    """The fold-in of a `predict.Predictor`'s item-based model."""
    if predictor.orientation != "item":
      raise ValueError("ReadoutFoldIn is for item-based models (CodeFoldIn for user-based)")
    pre = predictor.preprocessor
    trained, fallback = _fallback(predictor)
    return cls(predictor.model, predictor.params,
               predictor.train_rows,
               mid=pre.mid, half=pre.half, item_bias=pre.row_bias, trained_items=trained,
               fallback_I=fallback)

  def outputs(self, w: np.ndarray) -> np.ndarray:
    """Model-unit outputs of every item for a read-out (w, b)."""
    z = self.codes_IxH @ w
    return z if self._act is None else np.asarray(self._act(jnp.asarray(z)), np.float64)

  def fit(self, items: np.ndarray, y: np.ndarray) -> np.ndarray:
    """The posterior mode of (w, b) given model-unit targets `y` on item indices."""
    items, y = self._checked(items, y)
    phi = self.codes_IxH[items]

    def f(w):
      z = phi @ w
      return z if self._act is None else np.asarray(self._act(jnp.asarray(z)), np.float64)

    def f_and_jac(w):
      z = phi @ w
      if self._act is None:
        return z, phi
      a, slope = jax.jvp(self._act, (jnp.asarray(z),), (jnp.ones(z.shape, jnp.float32),))
      return np.asarray(a, np.float64), phi * np.asarray(slope, np.float64)[:, None]

    return map_gauss_newton(f, f_and_jac, np.asarray(y, np.float64), self.prior_mean_H,
                            self.prior_mean_H, self.prior_precision_HxH, self.noise_var)

  def scores(self, items: np.ndarray, ratings: np.ndarray) -> np.ndarray:
    """float32[I] unclipped predicted ratings of every item for a new user."""
    items, ratings = self._usable(items, ratings)
    if not len(items):
      return self.fallback_I.copy()
    y = (ratings - self.mid) / self.half - self.item_bias[items]
    scores = (self.outputs(self.fit(items, y)) + self.item_bias) * self.half + self.mid
    return self._finish(scores, ratings)
