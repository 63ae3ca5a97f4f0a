"""The train state and the jitted train step (with dense re-feeding).

`make_train_step(model, tx, ...)` returns the pure `(state, batch, key) -> (state,
metrics)` function the loop jits: one update on the batch's observed entries, then
`refeed_steps` dense re-feeding updates (DeepRec section 2.2). How a pass turns its
loss into new parameters is the `update` seam: optax by default (`optax_update`), or
a plug-in's (the native CPU path's fused SGD, chosen by autorec_jax.training.fast_path).
"""

from __future__ import annotations

from typing import Any, Callable

import flax
import jax
import jax.numpy as jnp
import optax

from autorec_jax.models import autoencoder as ae
from autorec_jax.models import losses
from autorec_jax.models.autoencoder import AutoEncoder
from autorec_jax.models.sparse import SparseRows
from autorec_jax.training import noise as noise_lib


@flax.struct.dataclass
class TrainState:
  """What a checkpoint holds: the step count, parameters and optimizer state."""

  step: jax.Array
  params: Any
  opt_state: Any



def init_state(model: AutoEncoder, tx: optax.GradientTransformation, num_inputs: int,
               init_key: jax.Array) -> TrainState:
  """A fresh state: parameters from `init_key`, step 0, `tx`'s initial state."""

  def init(key):
    params = model.init(key, jnp.zeros((1, num_inputs), jnp.float32), train=False)["params"]
    return TrainState(step=jnp.zeros((), jnp.int32), params=params,
                      opt_state=tx.init(params))

  # One compiled program (the same values) instead of one per operation, which took
  # seconds at start-up.
  return jax.jit(init)(init_key)


# A pass's update: (state, loss_fn, x, y, m, c, dropout_key) -> (new state, loss, the
# gradient's global norm, the dense output a re-feeding pass takes as input or None).
# `loss_fn(params, perturbations, x, y, m, c, dropout_key)` returns (loss, (dense
# output or None, last hidden layer or None)); an update that passes the model's
# perturbations (sparse rows only, AutoEncoder's `deferred_kernel_grads`) gets the
# first and output kernels' gradients as factors instead of built (see
# autorec_jax.native.fused_sgd.make_update), the default passes None.
Update = Callable[..., tuple[TrainState, jax.Array, jax.Array, "jax.Array | None"]]


def optax_update(tx: optax.GradientTransformation) -> Update:
  """The update by `tx`: value_and_grad of the loss, tx.update, optax.apply_updates,
  and the gradient's global norm."""

  def update(state, loss_fn, x, y, m, c, dropout_key):
    (loss, (pred_BxI, _)), grads = jax.value_and_grad(loss_fn, has_aux=True)(
        state.params, None, x, y, m, c, dropout_key)
    updates, opt_state = tx.update(grads, state.opt_state, state.params)
    params = optax.apply_updates(state.params, updates)
    grad_norm = optax.tree.norm(grads)
    return state.replace(params=params, opt_state=opt_state), loss, grad_norm, pred_BxI

  return update


def make_train_step(model: AutoEncoder, tx: optax.GradientTransformation, *,
                    refeed_steps: int, noise: noise_lib.NoiseConfig | None = None,
                    alpha: float = 1.0, beta: float = 1.0,
                    sparse_input: bool = False, num_inputs: int | None = None,
                    update: Update | None = None) -> Callable:
  """(state, batch, key) -> (state, metrics): one update on the sparse batch, then
  `refeed_steps` dense re-feeding updates (DeepRec section 2.2).

  With `noise`, the sparse pass sees a corrupted input and fits the clean one with
  Strub & Mary's alpha/beta loss (alpha on corrupted, beta on the other known
  entries). Re-feeding treats the previous output f(x) (no gradient through it) as a
  new dense example and fits f(f(x)) to it with every entry of the real rows
  observed; each pass draws its own dropout mask. With `sparse_input` (batches from
  `CSRBatcher(entries=True)`, dense "x"/"mask" only where noise needs them; the input
  width `num_inputs` is then required) the sparse pass computes the first layer from
  the batch's entry lists (the model's sparse ops, autorec_jax.models.sparse; noise
  only changes known entries, so they still cover the input) and the loss and the
  output layer's gradients at those entries only (the dense output is computed only
  when a re-feeding pass needs it as its input); re-feeding passes are dense.
  `update` (see `Update`) performs each pass's update; by default `optax_update(tx)`.
  A plug-in's must do the same update as `tx` (the state is `tx`'s).
  """
  denoise = noise is not None and noise.active
  output = "entries+dense" if refeed_steps else "entries"
  if sparse_input and not num_inputs:
    raise ValueError("the sparse input path needs num_inputs, the input width")
  update = update or optax_update(tx)

  def objective(pred, target, mask, corrupted):
    """Masked MSE, or Strub & Mary's alpha/beta loss where `corrupted` is given;
    dense rows [B, I] or values at the entries [E] alike."""
    if corrupted is None:
      return losses.masked_mse(pred, target, mask)
    total, count = losses.denoising_sse(pred, target, mask, corrupted, alpha=alpha,
                                        beta=beta)
    return total / jnp.maximum(count, 1.0)

  def loss_fn(params, perturbations, x, y, m, c, dropout_key):
    """(loss, (the dense output a re-feeding pass takes as input, else None; the last
    hidden layer where `perturbations` are given, else None)); x is dense [B, I]
    (y, m, c alike) or SparseRows (y, m, c at its entries, [E]). `perturbations`
    (sparse rows only) feed the first and output kernels' gradients out instead of
    building them (AutoEncoder's `deferred_kernel_grads`)."""
    if not isinstance(x, SparseRows):
      pred_BxI = model.apply({"params": params}, x, train=True,
                             rngs={"dropout": dropout_key})
      return objective(pred_BxI, y, m, c), (pred_BxI, None)
    deferred = perturbations is not None
    variables = {"params": params, **({"perturbations": perturbations} if deferred else {})}
    out, sown = model.apply(variables, x, train=True, output=output,
                            deferred_kernel_grads=deferred, rngs={"dropout": dropout_key},
                            mutable=["intermediates"])
    pred_E, pred_BxI = out if refeed_steps else (out, None)
    h_BxH = sown["intermediates"][ae.LAST_HIDDEN][0] if deferred else None
    return objective(pred_E, y, m, c), (pred_BxI, h_BxH)

  def sparse_inputs(batch, keys):
    """(input SparseRows, target, mask, corrupted) at the batch's listed entries."""
    row_E, col_E, count = batch["entry_row"], batch["entry_col"], batch["entry_count"]
    y_E = batch["entry_val"]
    x = SparseRows(row_E, col_E, y_E, count, shape=(batch["row_mask"].shape[0], num_inputs))
    m_E = x.valid()
    if not denoise:
      return x, y_E, m_E, None
    # Corrupted like the dense path (same draws), then read at the entries.
    m_BxI = batch["mask"] * batch["row_mask"][:, None]
    in_BxI, c_BxI = noise_lib.corrupt(batch["x"], m_BxI, noise, keys[1])
    return x.replace(val=in_BxI[row_E, col_E]), y_E, m_E, c_BxI[row_E, col_E]

  def train_step(state, batch, key):
    keys = jax.random.split(jax.random.fold_in(key, state.step), 2 + refeed_steps)
    row_mask_B = batch["row_mask"]
    if sparse_input:
      x, y, m, c = sparse_inputs(batch, keys)
    else:
      y = batch["x"]
      m = batch["mask"] * row_mask_B[:, None]
      x, c = y, None
      if denoise:
        x, c = noise_lib.corrupt(y, m, noise, keys[1])
    state, loss, grad_norm, pred_BxI = update(state, loss_fn, x, y, m, c, keys[0])
    out = {"train/loss": loss, "train/grad_norm": grad_norm,
           "train/rows": jnp.sum(row_mask_B)}
    refeed_losses = []
    for k in range(refeed_steps):  # Python loop: the count is fixed when jitted.
      full_BxI = jnp.broadcast_to(row_mask_B[:, None], pred_BxI.shape)
      dense_BxI = jax.lax.stop_gradient(pred_BxI) * full_BxI
      state, refeed_loss, _, pred_BxI = update(state, loss_fn, dense_BxI, dense_BxI,
                                               full_BxI, None, keys[2 + k])
      refeed_losses.append(refeed_loss)
    if refeed_losses:
      out["train/refeed_loss"] = jnp.mean(jnp.stack(refeed_losses))
    return state.replace(step=state.step + 1), out

  return train_step
