"""SGD with momentum as one native pass over each parameter array (CPU).

optax.sgd(momentum) is two elementwise loops per parameter array on XLA:CPU (the
momentum trace, then the parameter step; XLA fuses them no further), and the
gradient's norm, a logged metric, a third: 7 passes over parameter-sized memory
where 5 suffice (read g, m, p; write m, p). On a machine whose step is bound by
memory traffic (e.g. ~25 GB/s past the L2 cache, 21.5 MB of parameters in the DeepRec
ML-1M model, two updates per step with re-feeding) the extra passes cost 6-8% of
an epoch (measured below). This
module does the same update with the native kernel `SgdMomentum`
(kernels/sparse_input.cc, built with the sparse kernels), in place where the state
is donated, and the sum of the squared gradient in the same pass.

It is the exact operation order of optax.sgd (m' = g + momentum * m, p' = p +
(-lr) * m') on optax's own state, so the state and checkpoints are the same as
with optax (a run may resume with either), and it applies only where that update
is the whole optimizer: `optim.name=sgd` with momentum, no Nesterov, no weight
decay, no gradient clipping, one CPU device, and `optim.fused` (default True) not
turned off (`applies`). Measured in one process, alternating epochs (ML-1M DeepRec
model, bfloat16, sparse path): 0.84 -> 0.785 s per epoch without
re-feeding, 1.81 -> 1.67 s with one re-feeding step; one 3706 x 512 array's update
and norm 1.19 -> 0.54 ms.

On the sparse path the first and output kernels' gradients need not exist at all:
`EntriesGradient` gives such a gradient as the batch's factors (x^T @ g, G^T @ h) and
the native `SgdMomentumEntries` sums each row in registers right before updating it
(4 passes over the kernel's memory instead of 7: the gradient is neither written nor
read back). The rows are summed exactly as the sparse gradient kernels sum them, so
the parameters are the same bit for bit (tested). `make_update`, the train step's
update that autorec_jax.training.fast_path picks, uses it on every sparse pass, for
all models (AutoEncoder's `deferred_kernel_grads`; a tied kernel gets the sum of its
two gradients, as XLA would add them): ML-1M epochs 0.548-0.597 ->
0.510-0.552 s without re-feeding, 1.48-1.63 -> 1.42-1.50 s with (alternating
processes).
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Mapping, NamedTuple, Sequence

import jax
import jax.numpy as jnp
import numpy as np
import optax

from autorec_jax.models import autoencoder as ae
from autorec_jax.models.sparse import SparseRows
from autorec_jax.native import sparse_input


class EntriesGradient(NamedTuple):
  """An [I, H] kernel's gradient left as a batch's factors, never built: its row c is
  the sum of coef[e] * a[row[e]] over the entries e < count with col[e] == c (x^T @ g
  for the first layer, coef the input values and a the gradient at x @ W; G^T @ h for
  the output layer, coef the gradient at the entries and a the last hidden layer; see
  AutoEncoder's `deferred_kernel_grads`)."""

  coef: jax.Array  # float32[E]
  a: jax.Array  # float32[B, H]
  row: jax.Array  # int32[E]
  col: jax.Array  # int32[E]
  count: jax.Array  # int32[1]


@dataclasses.dataclass(frozen=True)
class FusedSgd:
  """The update's hyperparameters: momentum and the learning rate per update count
  (the same schedule optax.sgd was built with)."""

  momentum: float
  learning_rate: Callable[[jax.Array], jax.Array]

  def apply(self, grads: Any, opt_state: Any, params: Any,
            entry_grads: Mapping[str, EntriesGradient | Sequence[EntriesGradient]]
            | None = None,
            after: Any = None) -> tuple[Any, Any, jax.Array]:
    """(new params, new optax.sgd state, global gradient norm).

    `entry_grads` gives the gradients of some top-level parameters (by name) as
    factors, or as the sum of several over the same entry lists (a tied kernel's two
    uses): their rows are summed inside the update (kernels/sparse_input.cc,
    SgdMomentumEntries; the same sums as the sparse gradient kernels, so the same
    parameters) and their entries in `grads` are never read. `after` (arrays) orders
    those updates after the operations that compute it: where these are the last
    readers of such a parameter, XLA updates it in place instead of copying it for
    them (two copies of the output kernel per step otherwise).
    """
    entry_grads = dict(entry_grads or {})
    trace = optax.tree_utils.tree_get(opt_state, "trace")
    count = optax.tree_utils.tree_get(opt_state, "count")
    lr = jnp.reshape(jnp.asarray(self.learning_rate(count), jnp.float32), (1,))
    paths_leaves, treedef = jax.tree_util.tree_flatten_with_path(params)
    names = [_top_level_name(path) for path, _ in paths_leaves]
    missing = set(entry_grads) - set(names)
    if missing:
      raise ValueError(f"entry gradients for parameters not in the model: {sorted(missing)}")
    after = tuple(jax.tree.leaves(after))
    out = [_update_entries(p, m, entry_grads[name], lr, self.momentum, after)
           if name in entry_grads else _update(p, m, g, lr, self.momentum)
           for name, (_, p), m, g in zip(names, paths_leaves, treedef.flatten_up_to(trace),
                                         treedef.flatten_up_to(grads))]
    new_params = treedef.unflatten([o[0] for o in out])
    new_trace = treedef.unflatten([o[1] for o in out])
    norm = jnp.sqrt(sum(o[2][0] for o in out))
    opt_state = optax.tree_utils.tree_set(opt_state, trace=new_trace,
                                          count=optax.safe_increment(count))
    return new_params, opt_state, norm


def make_update(fused: FusedSgd, model: ae.AutoEncoder, *,
                deferred_kernel_grads: bool = True) -> Callable:
  """The train step's update with `fused` (autorec_jax.training.step.make_train_step's
  `update`): (state, loss_fn, x, y, m, c, dropout_key) -> (new state, loss, the
  gradient's global norm, the dense output or None).

  Like the default optax update it takes value_and_grad of `loss_fn`, then applies
  `fused` instead of optax. On a sparse pass (x given as SparseRows) with
  `deferred_kernel_grads`, the first and output kernels' gradients are never built:
  `loss_fn` gets the model's perturbations, and the update sums each of those kernels'
  rows from the batch's entries (AutoEncoder's `deferred_kernel_grads`; the same sums,
  so the same parameters, with two [n, w_1] arrays less written and read per step).
  """

  def deferred_update(state, loss_fn, x, y, m, c, dropout_key):
    """The update on a sparse pass with the two kernels' gradients summed in it."""
    perturbations = {
        ae.FIRST_LAYER_PRODUCT: jnp.zeros((x.shape[0], model.hidden[0]), jnp.float32),
        ae.OUTPUT_AT_ENTRIES: jnp.zeros(x.row.shape, jnp.float32)}
    (loss, (pred_BxI, h_BxH)), (grads, at) = jax.value_and_grad(
        loss_fn, argnums=(0, 1), has_aux=True)(
            state.params, perturbations, x, y, m, c, dropout_key)
    lists = (x.row, x.col, x.count)
    first = EntriesGradient(x.val, at[ae.FIRST_LAYER_PRODUCT], *lists)
    output_layer = EntriesGradient(at[ae.OUTPUT_AT_ENTRIES], h_BxH, *lists)
    if model.tied:  # the output kernel is the first one: the two gradients summed
      entry_grads = {ae.INPUT_KERNEL: (first, output_layer)}
    else:
      entry_grads = {ae.INPUT_KERNEL: first,
                     ae.output_kernel_name(model.hidden): output_layer}
    # The output kernel is read until its bias's gradient and the dense output are
    # computed; updated after them, it is updated in place, not copied (twice).
    out_bias = grads[ae.output_bias_name(model.hidden)]
    params, opt_state, grad_norm = fused.apply(grads, state.opt_state, state.params,
                                               entry_grads, after=(out_bias, pred_BxI))
    return state.replace(params=params, opt_state=opt_state), loss, grad_norm, pred_BxI

  def update(state, loss_fn, x, y, m, c, dropout_key):
    if deferred_kernel_grads and isinstance(x, SparseRows):
      return deferred_update(state, loss_fn, x, y, m, c, dropout_key)
    (loss, (pred_BxI, _)), grads = jax.value_and_grad(loss_fn, has_aux=True)(
        state.params, None, x, y, m, c, dropout_key)
    params, opt_state, grad_norm = fused.apply(grads, state.opt_state, state.params)
    return state.replace(params=params, opt_state=opt_state), loss, grad_norm, pred_BxI

  return update


def _in_place_update(target: str, p, m, *operands, momentum: float, **attrs):
  """(p', m', sum of squared gradient) from the native kernel `target`, which updates
  p and m in place (under donation) from `operands`."""
  sparse_input.register()
  shape = jax.ShapeDtypeStruct(p.shape, jnp.float32)
  return jax.ffi.ffi_call(
      sparse_input.TARGETS[target],
      (shape, shape, jax.ShapeDtypeStruct((1,), jnp.float32)),
      input_output_aliases={0: 0, 1: 1})(p, m, *operands, momentum=np.float32(momentum),
                                         **attrs)


def _update(p, m, g, lr, momentum: float):
  return _in_place_update("sgd_momentum", p, m, g.astype(jnp.float32), lr,
                          momentum=momentum)


def _update_entries(p, m, grad: EntriesGradient | Sequence[EntriesGradient], lr,
                    momentum: float, after=()):
  factors = [grad] if isinstance(grad, EntriesGradient) else list(grad)
  first = factors[0]
  # Further factors as separate operands, not stacked: a stack (even a reshape) in
  # front of the custom call changes how XLA fuses the arrays' other consumers, and
  # with it the float rounding of, say, a bias gradient.
  more = [x.astype(jnp.float32) for f in factors[1:] for x in (f.coef, f.a)]
  return _in_place_update("sgd_momentum_entries", p, m, first.coef.astype(jnp.float32),
                          first.a.astype(jnp.float32), first.row, first.col, first.count,
                          lr, *more, *after, momentum=momentum,
                          factors=np.int32(len(factors)))


def _top_level_name(path) -> str | None:
  """The parameter's name where it is a top-level entry of the params dict."""
  if len(path) == 1 and isinstance(path[0], jax.tree_util.DictKey):
    return path[0].key
  return None


def applies(optim_cfg, *, num_devices: int) -> tuple[bool, str]:
  """(True, '') where the fused update replaces optax's exactly, else (False, why)."""
  if not optim_cfg.get("fused", True):
    return False, "optim.fused=False"
  if optim_cfg.name != "sgd" or not optim_cfg.momentum:
    return False, "not SGD with momentum"
  if optim_cfg.nesterov or optim_cfg.weight_decay or optim_cfg.grad_clip_norm:
    return False, "Nesterov, weight decay or gradient clipping"
  if num_devices != 1:
    return False, f"{num_devices} devices"
  ok, why = sparse_input.available()
  return ok, why
