"""Kernelized autoencoders: Sparse FC / kernelNet (Muller et al. 2018) and GLocal-K's
local kernel network (Han et al. 2021), as pure flax.linen modules.

A kernelized dense layer learns, besides its weights W [in, out] and bias b [out], a
point in R^d for every input (U [in, d]) and every output (V [out, d]). The weight of
connection (i, j) is multiplied by

  w_hat_ij = max(0, 1 - ||U_i - V_j||^2)

so connections whose points drift apart switch off; the layer computes
act(x @ (W * w_hat) + b). Its penalty is lambda_s/2 * sum(w_hat^2) + lambda_2/2 *
sum(W^2). The squared distance is computed as such (never as a norm squared: the
norm's gradient is NaN at distance 0, which is where every pair starts).

`KernelAutoEncoder(hidden=(500, 500))` on an input of width n is the reference
network n, 500, 500, n: every layer listed in `hidden` (not mirrored), then an output
layer back to n with the identity activation. `kernel_dim=0` gives plain dense layers
(the same network without the kernel), and `kernelized` picks which layers carry the
kernel. All kernels are stored [in, out].
"""

from __future__ import annotations

from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from autorec_jax.models import sparse as sparse_ops
from autorec_jax.models.autoencoder import ACTIVATIONS

KERNEL_STD = 1e-3  # the init std of U and V: every connection starts switched on
GLOBAL_KERNEL = "global_kernel"  # GLocal-K's C [num_rows, size^2] (see global_kernel.py)


def kernel_mask(u_IxD: jax.Array, v_OxD: jax.Array) -> jax.Array:
  """w_hat [I, O] = max(0, 1 - ||u_i - v_j||^2).

  The squared distance is expanded, |u|^2 + |v|^2 - 2 u.v (a [I, d] x [d, O] product
  instead of an [I, O, d] difference: several times faster forward and backward), and
  floored at 0 so rounding never lifts a weight above 1."""
  d2 = (jnp.sum(jnp.square(u_IxD), axis=1)[:, None] + jnp.sum(jnp.square(v_OxD), axis=1)[None]
        - 2.0 * (u_IxD @ v_OxD.T))
  return jnp.maximum(0.0, 1.0 - jnp.maximum(d2, 0.0))


def _truncated_normal(std: float):
  return nn.initializers.truncated_normal(stddev=std)


def layer_names(index: int, *, output: bool = False) -> tuple[str, str, str, str]:
  """The (W, b, U, V) parameter names of hidden layer `index`, or of the output layer."""
  p = "out" if output else f"layer{index}"
  return f"{p}_kernel", f"{p}_bias", f"{p}_u", f"{p}_v"


class KernelAutoEncoder(nn.Module):
  """Autoencoder of (optionally) kernelized dense layers, trained on observed entries.

  Attributes:
    hidden: the widths of the hidden layers, in order (not mirrored).
    activation: a key of ACTIVATIONS after every hidden layer (kernelNet: sigmoid).
    output_activation: apply it to the output layer too (else identity, the
      reference).
    kernel_dim: d, the dimension of the kernel's points (0 = no layer kernelized).
    kernelized: which layers carry the kernel: indices into hidden + [output]
      (len(hidden) is the output layer); empty = all of them.
    dropout: accepted for the shared model interface; must be 0 (the reference has
      none, and the full-batch trainer is deterministic).
    global_kernel_rows: > 0 for GLocal-K: the number of input rows, so the module also
      holds C [rows, global_kernel_size^2] (autorec_jax.models.global_kernel). The
      network itself reads the convolved rows it is given.
    global_kernel_size: the global kernel's side (3 in the reference).
  """

  hidden: Sequence[int]
  activation: str = "sigmoid"
  output_activation: bool = False
  kernel_dim: int = 5
  kernelized: Sequence[int] = ()
  dropout: float = 0.0
  global_kernel_rows: int = 0
  global_kernel_size: int = 3
  tied: bool = False  # the shared interface's field; a kernel network is never tied

  def _is_kernelized(self, index: int) -> bool:
    return self.kernel_dim > 0 and (not self.kernelized or index in self.kernelized)

  def _layer(self, index: int, n_in: int, n_out: int, output: bool):
    kname, bname, uname, vname = layer_names(index, output=output)
    w = self.param(kname, nn.initializers.xavier_uniform(), (n_in, n_out))
    b = self.param(bname, nn.initializers.zeros, (n_out,))
    if self._is_kernelized(index):
      u = self.param(uname, _truncated_normal(KERNEL_STD), (n_in, self.kernel_dim))
      v = self.param(vname, _truncated_normal(KERNEL_STD), (n_out, self.kernel_dim))
      w = w * kernel_mask(u, v)
    return w, b

  @nn.compact
  def __call__(self, x, *, train: bool = False, output: str = "dense"):
    """Maps input rows [batch, n] (dense, or SparseRows) to predicted rows [batch, n],
    or (output="entries", sparse rows) to the predictions at the listed entries [E]."""
    del train  # no dropout: see the class docstring
    if not self.hidden:
      raise ValueError("KernelAutoEncoder needs at least one hidden layer")
    sparse = isinstance(x, sparse_ops.SparseRows)
    if output != "dense" and not sparse:
      raise ValueError(f"output={output!r} needs the input as SparseRows")
    if self.global_kernel_rows:
      self.param(GLOBAL_KERNEL, _truncated_normal(0.1),
                 (self.global_kernel_rows, self.global_kernel_size ** 2))
    act = ACTIVATIONS[self.activation]
    num_inputs = x.shape[-1]
    widths = [num_inputs, *self.hidden]
    h = x
    for i, (n_in, n_out) in enumerate(zip(widths[:-1], widths[1:])):
      w, b = self._layer(i, n_in, n_out, output=False)
      product = sparse_ops.input_matmul(h, w) if (i == 0 and sparse) else h @ w
      h = act(product + b[None, :])
    w, b = self._layer(len(self.hidden), widths[-1], num_inputs, output=True)
    if output == "entries":
      out = sparse_ops.output_matmul(h, w.T, b, x.row, x.col, x.count)
    else:
      out = h @ w + b[None, :]
    return act(out) if self.output_activation else out

  # --- The trained network's parts (unbound use: `model.encode(params, x)`), the same
  # interface as AutoEncoder's, with the kernels' effective weights W * w_hat.

  def effective(self, params, index: int, *, output: bool = False):
    """(W * w_hat, b) of hidden layer `index` or of the output layer."""
    kname, bname, uname, vname = layer_names(index, output=output)
    w = params[kname]
    if uname in params:
      w = w * kernel_mask(params[uname], params[vname])
    return w, params[bname]

  def encode(self, params, x_BxN: jax.Array) -> jax.Array:
    """The last hidden layer of dense input rows."""
    act = ACTIVATIONS[self.activation]
    h = x_BxN
    for i in range(len(self.hidden)):
      w, b = self.effective(params, i)
      h = act(h @ w + b[None, :])
    return h

  def decode_hidden(self, params, code_BxC: jax.Array):
    """(h_BxH, kernel_HxN, bias_N): the output layer's input (the code itself) and
    that layer's effective weights."""
    w, b = self.effective(params, len(self.hidden), output=True)
    return code_BxC, w, b

  def decode(self, params, code_BxC: jax.Array) -> jax.Array:
    """The output rows of codes."""
    h, w, b = self.decode_hidden(params, code_BxC)
    out = h @ w + b[None, :]
    return ACTIVATIONS[self.activation](out) if self.output_activation else out

  def penultimate(self, params, x_BxN: jax.Array):
    """`decode_hidden` of the code of `x_BxN`."""
    return self.decode_hidden(params, self.encode(params, x_BxN))

  def first_layer(self, params) -> tuple[jax.Array, jax.Array]:
    """(effective kernel [n, w_1], bias [w_1]) of the first layer."""
    return self.effective(params, 0)

  def output_kernel(self, params) -> jax.Array:
    """The output layer's effective kernel, items-major [n, w_last]."""
    return self.effective(params, len(self.hidden), output=True)[0].T


def penalty(params, *, lambda_s: float, lambda_2: float) -> jax.Array:
  """sum over layers of lambda_s/2 * sum(w_hat^2) + lambda_2/2 * sum(W^2); each layer
  counted once, biases and GLocal-K's C not penalised (as the reference)."""
  total = jnp.zeros((), jnp.float32)
  for name, w in params.items():
    if not name.endswith("_kernel"):
      continue
    prefix = name[:-len("_kernel")]
    total = total + 0.5 * lambda_2 * jnp.sum(jnp.square(w))
    if f"{prefix}_u" in params:
      mask = kernel_mask(params[f"{prefix}_u"], params[f"{prefix}_v"])
      total = total + 0.5 * lambda_s * jnp.sum(jnp.square(mask))
  return total
