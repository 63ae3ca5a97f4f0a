"""Matrix-factorization baselines of Strub & Mary (2015, section 2.4): SVD and ALS-WR.

Both fit r_hat(u, i) = offset(u, i) + b_u + b_i + p_u . q_i on ratings mapped to
[-1, 1] (the paper's preprocessing, section 4.1), as pure JAX functions in float32:

- `Offsets`: fixed statistics of the train ratings removed before fitting, the paper's
  "r + r_bar - b_u - b_v": offset(u, i) = mean + (user mean - mean) + (item mean -
  mean), or just the global mean without biases. They are added back to predict.
- SVD (Funk / Koren): mini-batch gradient descent on
    1/2 sum_(u,i) [(y_ui - b_u - b_i - p_u . q_i)^2 + reg (|p_u|^2 + |q_i|^2 + b_u^2 + b_i^2)]
  with y the rating minus its offset. Regularisation is per rating, and the gradient is
  the sum over the batch (not the mean), so an `optax.sgd(lr)` step moves each rating's
  parameters as Funk's per-rating update `p += lr (e q - reg p)` does; b_u, b_i are
  learnt only when `learn_biases`. A whole epoch is one `lax.scan` over fixed-shape
  padded batches.
- ALS-WR (Zhou et al. 2008): alternately solves, for every user then every item,
    (sum_(i in I_u) q_i q_i^T + reg n_u I) p_u = sum_(i in I_u) y_ui q_i,
  the weighted-lambda regularisation. The normal equations are accumulated by a
  `lax.scan` over fixed-size chunks of ratings sorted by row (scatter-add of outer
  products, memory O(rows k^2)), then solved for all rows at once with a batched
  Cholesky factorisation. A row with no ratings gets a zero vector.

Shapes: U users, I items, K rank, N ratings, S steps (or chunks) of B (or C) ratings.
Products use full float32 precision (`Precision.HIGHEST`), so GPUs' reduced-precision
matmuls do not perturb the normal equations.
"""

from __future__ import annotations

import functools
from typing import Callable

import flax
import jax
import jax.numpy as jnp
import numpy as np
import optax


_HIGHEST = jax.lax.Precision.HIGHEST


@flax.struct.dataclass
class Factors:
  """Learnt parameters: user and item factors and biases (zero when not learnt)."""

  user_UxK: jax.Array
  item_IxK: jax.Array
  user_bias_U: jax.Array
  item_bias_I: jax.Array


@flax.struct.dataclass
class Offsets:
  """Fixed train statistics removed before fitting: offset(u, i) = mean + user_U[u] +
  item_I[i] (zeros for users and items without train ratings, or without biases)."""

  mean: jax.Array
  user_U: jax.Array
  item_I: jax.Array


def num_params(factors: Factors, *, learn_biases: bool) -> int:
  """Learnt parameters: the factors, plus the biases when they are learnt."""
  n = factors.user_UxK.size + factors.item_IxK.size
  if learn_biases:
    n += factors.user_bias_U.size + factors.item_bias_I.size
  return int(n)


def to_unit_scale(rating: np.ndarray, lo: float, hi: float) -> np.ndarray:
  """Maps ratings on [lo, hi] to [-1, 1] (float32), as the paper's preprocessing."""
  half = (hi - lo) / 2.0 if hi > lo else 1.0
  return ((np.asarray(rating, np.float64) - (lo + hi) / 2.0) / half).astype(np.float32)


def from_unit_scale(value, lo: float, hi: float):
  """The inverse of `to_unit_scale`."""
  half = (hi - lo) / 2.0 if hi > lo else 1.0
  return value * half + (lo + hi) / 2.0


def fit_offsets(user: np.ndarray, item: np.ndarray, value: np.ndarray, num_users: int,
                num_items: int, *, use_biases: bool) -> Offsets:
  """The global mean and, with `use_biases`, each user's and item's mean minus it."""
  value = np.asarray(value, np.float64)
  mean = float(value.mean()) if len(value) else 0.0

  def deviation(index, n):
    if not use_biases:
      return np.zeros(n, np.float32)
    count = np.bincount(index, minlength=n)
    total = np.bincount(index, weights=value, minlength=n)
    return np.where(count > 0, total / np.maximum(count, 1) - mean, 0.0).astype(np.float32)

  return Offsets(mean=jnp.float32(mean), user_U=jnp.asarray(deviation(user, num_users)),
                 item_I=jnp.asarray(deviation(item, num_items)))


def offset(offsets: Offsets, user_N: jax.Array, item_N: jax.Array) -> jax.Array:
  return offsets.mean + offsets.user_U[user_N] + offsets.item_I[item_N]


def init_factors(key: jax.Array, num_users: int, num_items: int, rank: int, *,
                 init_std: float = 0.1) -> Factors:
  """Factors drawn from N(0, init_std^2) (as Funk's SVD); biases start at zero."""
  user_key, item_key = jax.random.split(key)
  return Factors(
      user_UxK=init_std * jax.random.normal(user_key, (num_users, rank), jnp.float32),
      item_IxK=init_std * jax.random.normal(item_key, (num_items, rank), jnp.float32),
      user_bias_U=jnp.zeros((num_users,), jnp.float32),
      item_bias_I=jnp.zeros((num_items,), jnp.float32))


def residual_prediction(factors: Factors, user_N: jax.Array, item_N: jax.Array) -> jax.Array:
  """b_u + b_i + p_u . q_i: the prediction of a rating minus its offset."""
  dot_N = jnp.einsum("...k,...k->...", factors.user_UxK[user_N], factors.item_IxK[item_N],
                     precision=_HIGHEST)
  return factors.user_bias_U[user_N] + factors.item_bias_I[item_N] + dot_N


def predict(factors: Factors, offsets: Offsets, user_N: jax.Array,
            item_N: jax.Array) -> jax.Array:
  """The full prediction on the [-1, 1] scale: offset + biases + dot product."""
  return offset(offsets, user_N, item_N) + residual_prediction(factors, user_N, item_N)


# --- SVD by mini-batch gradient descent -------------------------------------------------


def svd_loss(factors: Factors, user_B: jax.Array, item_B: jax.Array, target_B: jax.Array,
             mask_B: jax.Array, *, reg: float) -> tuple[jax.Array, jax.Array]:
  """(objective, sse) summed over the batch's unmasked ratings; targets are residuals.

  objective = 1/2 sum mask [(target - pred)^2 + reg (|p_u|^2 + |q_i|^2 + b_u^2 + b_i^2)].
  """
  if not (user_B.shape == item_B.shape == target_B.shape == mask_B.shape):
    raise ValueError(f"batch shapes differ: {user_B.shape} {item_B.shape} "
                     f"{target_B.shape} {mask_B.shape}")
  p_BxK, q_BxK = factors.user_UxK[user_B], factors.item_IxK[item_B]
  bu_B, bi_B = factors.user_bias_U[user_B], factors.item_bias_I[item_B]
  err_B = target_B - (bu_B + bi_B + jnp.einsum("bk,bk->b", p_BxK, q_BxK,
                                                precision=_HIGHEST))
  penalty_B = (jnp.sum(p_BxK * p_BxK, axis=1) + jnp.sum(q_BxK * q_BxK, axis=1)
               + bu_B * bu_B + bi_B * bi_B)
  sse = jnp.sum(mask_B * err_B * err_B)
  return 0.5 * (sse + reg * jnp.sum(mask_B * penalty_B)), sse


def make_svd_step(tx: optax.GradientTransformation, *, reg: float,
                  learn_biases: bool) -> Callable:
  """(factors, opt_state, user_B, item_B, target_B, mask_B) -> (factors, opt_state, metrics).

  The gradient of `svd_loss` (a sum over the batch) goes through `tx`; with
  `optax.sgd(lr)` this is Funk's update summed over the batch, with
  `optax.sgd(lr, momentum)` heavy-ball SGD. Without `learn_biases` the bias gradients
  are zeroed, so the biases stay at zero. metrics: {"loss": objective sum, "sse":
  squared-error sum, "count": ratings}.
  """

  def step(factors, opt_state, user_B, item_B, target_B, mask_B):
    (loss, sse), grads = jax.value_and_grad(
        functools.partial(svd_loss, reg=reg), has_aux=True)(
            factors, user_B, item_B, target_B, mask_B)
    if not learn_biases:  # Python bool fixed when the step is built.
      grads = grads.replace(user_bias_U=jnp.zeros_like(grads.user_bias_U),
                            item_bias_I=jnp.zeros_like(grads.item_bias_I))
    updates, opt_state = tx.update(grads, opt_state, factors)
    factors = optax.apply_updates(factors, updates)
    return factors, opt_state, {"loss": loss, "sse": sse, "count": jnp.sum(mask_B)}

  return step


def make_svd_epoch(tx: optax.GradientTransformation, *, reg: float,
                   learn_biases: bool) -> Callable:
  """One epoch as a scan over batches of rating positions, jit-compiled.

  (factors, opt_state, user_N, item_N, target_N, index_SxB, mask_SxB) ->
  (factors, opt_state, {"loss", "sse", "count"} summed over the epoch). `index_SxB`
  holds positions into the train arrays (padding positions have mask 0), so the epoch's
  shapes stay fixed and nothing recompiles from one epoch to the next.
  """
  step = make_svd_step(tx, reg=reg, learn_biases=learn_biases)

  @jax.jit
  def epoch(factors, opt_state, user_N, item_N, target_N, index_SxB, mask_SxB):
    def body(carry, batch):
      factors, opt_state = carry
      index_B, mask_B = batch
      factors, opt_state, m = step(factors, opt_state, user_N[index_B], item_N[index_B],
                                   target_N[index_B], mask_B)
      return (factors, opt_state), m

    (factors, opt_state), per_step = jax.lax.scan(body, (factors, opt_state),
                                                  (index_SxB, mask_SxB))
    return factors, opt_state, jax.tree.map(jnp.sum, per_step)

  return epoch


def epoch_batches(num_ratings: int, batch_size: int, *, seed: int,
                  epoch: int) -> tuple[np.ndarray, np.ndarray]:
  """A shuffled pass over every rating as (index_SxB int32, mask_SxB float32).

  The order comes from `np.random.default_rng([seed, epoch])`; the last batch is padded
  with position 0 and mask 0. S is ceil(num_ratings / batch_size) for every epoch.
  """
  steps = max(1, -(-num_ratings // batch_size))
  order = np.random.default_rng([seed, epoch]).permutation(num_ratings)
  index = np.zeros(steps * batch_size, np.int32)
  mask = np.zeros(steps * batch_size, np.float32)
  index[:num_ratings] = order
  mask[:num_ratings] = 1.0
  return index.reshape(steps, batch_size), mask.reshape(steps, batch_size)


# --- ALS-WR -----------------------------------------------------------------------------


@flax.struct.dataclass
class RowChunks:
  """Ratings sorted by row (user or item) in fixed-size chunks, padded with mask 0.

  rows_SxC: the row being solved for; cols_SxC: the fixed side's index; target_SxC:
  residual ratings; mask_SxC: 1 for real ratings. num_rows and count_R (ratings per
  row, n_u or n_i) complete the problem.
  """

  rows_SxC: jax.Array
  cols_SxC: jax.Array
  target_SxC: jax.Array
  mask_SxC: jax.Array
  count_R: jax.Array


def chunk_by_row(rows: np.ndarray, cols: np.ndarray, target: np.ndarray, num_rows: int, *,
                 chunk: int) -> RowChunks:
  """Sorts ratings by row and cuts them into chunks of `chunk`, padding the last."""
  order = np.argsort(rows, kind="stable")
  n = len(rows)
  steps = max(1, -(-n // chunk))

  def pad(values, dtype):
    out = np.zeros(steps * chunk, dtype)
    out[:n] = values[order]
    return out.reshape(steps, chunk)

  rows_padded = pad(rows, np.int32)
  if n:  # pad with the last row so the chunk stays sorted (its mask is 0)
    rows_padded.reshape(-1)[n:] = rows[order][-1]
  return RowChunks(rows_SxC=jnp.asarray(rows_padded), cols_SxC=jnp.asarray(pad(cols, np.int32)),
                   target_SxC=jnp.asarray(pad(target, np.float32)),
                   mask_SxC=jnp.asarray(pad(np.ones(n, np.float32), np.float32)),
                   count_R=jnp.asarray(np.bincount(rows, minlength=num_rows).astype(np.float32)))


def normal_equations(fixed_CxK: jax.Array, chunks: RowChunks,
                     target_shift_C: jax.Array | None = None) -> tuple[jax.Array, jax.Array]:
  """(gram_RxKxK, rhs_RxK): sum over each row's ratings of q q^T and of y q.

  With `target_shift_C` (one value per column of the other side), the targets are
  y - shift[col]: the other side's learnt biases taken out.
  """
  num_rows, rank = chunks.count_R.shape[0], fixed_CxK.shape[1]

  def body(carry, chunk):
    gram, rhs = carry
    rows_C, cols_C, target_C, mask_C = chunk
    if target_shift_C is not None:
      target_C = target_C - target_shift_C[cols_C]
    q_CxK = fixed_CxK[cols_C] * mask_C[:, None]
    gram = gram.at[rows_C].add(jnp.einsum("ck,cl->ckl", q_CxK, q_CxK, precision=_HIGHEST),
                               indices_are_sorted=True)
    rhs = rhs.at[rows_C].add(q_CxK * target_C[:, None], indices_are_sorted=True)
    return (gram, rhs), None

  init = (jnp.zeros((num_rows, rank, rank), jnp.float32),
          jnp.zeros((num_rows, rank), jnp.float32))
  (gram, rhs), _ = jax.lax.scan(body, init, (chunks.rows_SxC, chunks.cols_SxC,
                                             chunks.target_SxC, chunks.mask_SxC))
  return gram, rhs


def als_solve(fixed_CxK: jax.Array, chunks: RowChunks, *, reg: float,
              target_shift_C: jax.Array | None = None) -> jax.Array:
  """The ALS-WR half-step: each row's factors given the other side's, [R, K].

  Solves (Q_r^T Q_r + reg n_r I) x_r = Q_r^T y_r for every row r by Cholesky; a row
  with no ratings (n_r = 0) gets x_r = 0. `target_shift_C` is passed to
  `normal_equations`.
  """
  gram, rhs = normal_equations(fixed_CxK, chunks, target_shift_C)
  rank = fixed_CxK.shape[1]
  count_R = chunks.count_R
  # reg * n_r on the diagonal; 1 for empty rows, whose right-hand side is 0.
  diag_R = jnp.where(count_R > 0, reg * count_R, 1.0)
  system = gram + diag_R[:, None, None] * jnp.eye(rank, dtype=jnp.float32)[None]
  chol = jnp.linalg.cholesky(system)
  return jax.scipy.linalg.cho_solve((chol, True), rhs[..., None])[..., 0]


def _with_ones(x_NxK: jax.Array) -> jax.Array:
  return jnp.concatenate([x_NxK, jnp.ones((x_NxK.shape[0], 1), x_NxK.dtype)], axis=1)


def als_solve_biased(fixed_CxK: jax.Array, fixed_bias_C: jax.Array, chunks: RowChunks, *,
                     reg: float) -> tuple[jax.Array, jax.Array]:
  """The half-step with learnt biases: fits y - b_col = x_r . q_col + b_r.

  The other side's factors get a constant 1 appended, so each row solves for its
  factors and its bias together, both under the weighted-lambda penalty.
  """
  solved_RxK1 = als_solve(_with_ones(fixed_CxK), chunks, reg=reg,
                          target_shift_C=fixed_bias_C)
  return solved_RxK1[:, :-1], solved_RxK1[:, -1]


def make_als_iteration(*, reg: float, learn_biases: bool = False) -> Callable:
  """(factors, by_user, by_item) -> factors: users given items, then items given users.

  With `learn_biases` every half-step also fits the rows' biases b_u (then b_i) under
  the same weighted-lambda penalty; without, the biases stay zero (the fixed offsets
  hold the user and item means).
  """

  @jax.jit
  def iteration(factors: Factors, by_user: RowChunks, by_item: RowChunks) -> Factors:
    if not learn_biases:
      user_UxK = als_solve(factors.item_IxK, by_user, reg=reg)
      item_IxK = als_solve(user_UxK, by_item, reg=reg)
      return factors.replace(user_UxK=user_UxK, item_IxK=item_IxK)
    user_UxK, user_bias_U = als_solve_biased(factors.item_IxK, factors.item_bias_I,
                                             by_user, reg=reg)
    item_IxK, item_bias_I = als_solve_biased(user_UxK, user_bias_U, by_item, reg=reg)
    return Factors(user_UxK=user_UxK, item_IxK=item_IxK, user_bias_U=user_bias_U,
                   item_bias_I=item_bias_I)

  return iteration


def als_objective(factors: Factors, by_user: RowChunks, by_item: RowChunks, *,
                  reg: float) -> tuple[jax.Array, jax.Array]:
  """(objective, sse): sum (y - b_u - b_i - p.q)^2 + reg (sum n_u (|p_u|^2 + b_u^2) +
  sum n_i (|q_i|^2 + b_i^2)); the biases are zero when not learnt."""
  pred_SxC = residual_prediction(factors, by_user.rows_SxC, by_user.cols_SxC)
  err = by_user.target_SxC - pred_SxC
  sse = jnp.sum(by_user.mask_SxC * err * err)
  user_sq_U = jnp.sum(factors.user_UxK ** 2, axis=1) + factors.user_bias_U ** 2
  item_sq_I = jnp.sum(factors.item_IxK ** 2, axis=1) + factors.item_bias_I ** 2
  penalty = jnp.sum(by_user.count_R * user_sq_U) + jnp.sum(by_item.count_R * item_sq_I)
  return sse + reg * penalty, sse
