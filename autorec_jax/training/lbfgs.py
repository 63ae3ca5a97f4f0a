"""Full-batch L-BFGS: the objective over the whole train matrix and rounds of L-BFGS
on it (the kernelNet and GLocal-K reference optimiser, there scipy's L-BFGS-B).

The objective is 1/2 * sum over the observed entries of the squared error plus the
kernel network's penalties (autorec_jax.models.kernel_net.penalty): a sum, not a
mean, as the references. A round is `lbfgs.iterations` iterations of L-BFGS-B from
a fresh history (the references restart it at every validation), so a run resumes
exactly from the parameters saved after any round.

Where the native sparse ops run (one CPU device) the first layer reads the observed
entries only and the output layer is computed at them only; elsewhere (a GPU, several
devices) the matrix is dense and its rows are split over the devices.
"""

from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np
import optax
import scipy.sparse as sp

from autorec_jax.models import global_kernel as gk
from autorec_jax.models import kernel_net
from autorec_jax.models import sparse as sparse_ops
from autorec_jax.runtime import parallel


class FullBatch:
  """The train matrix on the devices, as the objective reads it.

  Attributes:
    sparse: the entries as SparseRows (the sparse path), else None.
    dense: the dense [rows, cols] matrix (rows padded to the device count, split over
      them) where the dense path or the global kernel needs it, else None.
    mask: 1.0 at the observed entries of `dense`, else None.
  """

  def __init__(self, train_csr: sp.csr_matrix, *, sparse: bool, need_dense: bool, mesh):
    coo = train_csr.tocoo()
    self.shape = train_csr.shape
    self.sparse = None
    if sparse:
      self.sparse = sparse_ops.SparseRows(
          row=jnp.asarray(coo.row, jnp.int32), col=jnp.asarray(coo.col, jnp.int32),
          val=jnp.asarray(coo.data, jnp.float32),
          count=jnp.asarray([coo.nnz], jnp.int32), shape=tuple(train_csr.shape))
    self.dense = self.mask = None
    if not sparse or need_dense:
      devices = mesh.devices.size
      rows = -(-self.shape[0] // devices) * devices
      dense = np.zeros((rows, self.shape[1]), np.float32)
      mask = np.zeros_like(dense)
      dense[coo.row, coo.col] = coo.data
      mask[coo.row, coo.col] = 1.0
      sharding = parallel.data_sharded(mesh)
      self.dense = jax.device_put(dense, sharding)
      self.mask = jax.device_put(mask, sharding)


def make_objective(model: kernel_net.KernelAutoEncoder, data: FullBatch, *,
                   lambda_s: float, lambda_2: float, global_kernel: bool = False,
                   dot_scale: float = 1.0) -> Callable[[Any], jax.Array]:
  """loss(params): 1/2 * the observed entries' squared error + penalties. With
  `global_kernel`, the network reads relu(R conv K) (GLocal-K's fine-tuning), K from
  the same parameters."""
  num_rows = data.shape[0]

  def loss(params):
    x = data.sparse if data.sparse is not None else data.dense
    if global_kernel:
      p = gk.row_means(model, params, x)[:num_rows]
      k = gk.kernel(p, params[kernel_net.GLOBAL_KERNEL], dot_scale=dot_scale,
                    size=model.global_kernel_size)
      if data.sparse is not None:  # the sparse p pooled the real rows only
        x = gk.convolve(data.dense[:num_rows], k)
      else:
        x = gk.convolve(data.dense, k) * _real_rows(data.dense.shape[0], num_rows)
    penalties = kernel_net.penalty(params, lambda_s=lambda_s, lambda_2=lambda_2)
    if data.sparse is not None:
      s = data.sparse
      h = gk.hidden(model, params, x if global_kernel else s)
      _, w, b = model.decode_hidden(params, h)
      pred = sparse_ops.output_matmul(h, w.T, b, s.row, s.col, s.count)
      if model.output_activation:
        pred = kernel_net.ACTIVATIONS[model.activation](pred)
      err = (pred - s.val) * s.valid()
    else:
      pred = model.decode(params, model.encode(params, x))
      err = (pred - data.dense) * data.mask
    return 0.5 * jnp.sum(jnp.square(err)) + penalties

  return loss


def _real_rows(padded: int, real: int) -> jax.Array:
  return (jnp.arange(padded) < real).astype(jnp.float32)[:, None]


class Minimizer:
  """Rounds of L-BFGS (optax.lbfgs: zoom line search for the strong Wolfe conditions,
  as scipy's L-BFGS-B without bounds) over the loss of a params pytree.

  A whole round is one jitted loop on the device: no parameter crosses to the host
  between iterations (on a 6.4M-parameter kernelNet, scipy's L-BFGS-B spent as long in
  its own host-side vector work as in the loss and gradient)."""

  def __init__(self, loss: Callable[[Any], jax.Array], *, memory: int):
    self._loss = loss
    self._opt = optax.lbfgs(memory_size=memory)
    self._rounds = {}

  def _compiled(self, iterations: int):
    if iterations not in self._rounds:
      opt, loss = self._opt, self._loss
      value_and_grad = optax.value_and_grad_from_state(loss)

      def run(params):
        def body(_, carry):
          params, state = carry
          value, grad = value_and_grad(params, state=state)
          updates, state = opt.update(grad, state, params, value=value, grad=grad,
                                      value_fn=loss)
          return optax.apply_updates(params, updates), state

        params, state = jax.lax.fori_loop(0, iterations, body, (params, opt.init(params)))
        return params, loss(params)

      self._rounds[iterations] = jax.jit(run, donate_argnums=0)
    return self._rounds[iterations]

  def round(self, params, iterations: int):
    """(params after `iterations` L-BFGS iterations from a fresh history, the loss
    there); FloatingPointError when the loss is not finite."""
    params, value = self._compiled(iterations)(params)
    value = float(value)
    if not np.isfinite(value):
      raise FloatingPointError(f"the full-batch loss became {value}")
    return params, value
