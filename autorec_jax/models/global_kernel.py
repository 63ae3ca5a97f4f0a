"""GLocal-K's global kernel: a 3x3 convolution of the whole rating matrix whose
weights come from the pre-trained local kernel network (Han et al. 2021).

With R the model-unit train matrix (a row per model input, zero where unrated) and
AE the kernel autoencoder (autorec_jax.models.kernel_net):

  p      = the mean of each row of AE(R)                     [rows]
  K      = reshape(dot_scale * p @ C, (size, size))          C [rows, size^2], learned
  R_conv = relu(cross-correlation of R with K, 'SAME', zero padding)

and the fine-tuned prediction is AE(R_conv), the same network. p pools each input row
(an item, for the reference item-based network) over the row's outputs, as the
reference code's mean over axis 1 does. Because the convolution mixes neighbouring
rows and columns, predictions depend on the order of the ids, and a new row or
column needs a refit (docs/models.md).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import scipy.sparse as sp

from autorec_jax.models import sparse as sparse_ops
from autorec_jax.models.autoencoder import ACTIVATIONS
from autorec_jax.models.kernel_net import GLOBAL_KERNEL, KernelAutoEncoder


def hidden(model: KernelAutoEncoder, params, x) -> jax.Array:
  """The last hidden layer of input rows `x` (dense [R, n] or SparseRows)."""
  if not isinstance(x, sparse_ops.SparseRows):
    return model.encode(params, x)
  act = ACTIVATIONS[model.activation]
  w, b = model.effective(params, 0)
  h = act(sparse_ops.input_matmul(x, w) + b[None, :])
  for i in range(1, len(model.hidden)):
    w, b = model.effective(params, i)
    h = act(h @ w + b[None, :])
  return h


def row_means(model: KernelAutoEncoder, params, x) -> jax.Array:
  """p: the mean over each row's outputs of AE(x), [R]. With a linear output layer the
  mean is taken through it (h @ mean of the output kernel's columns + mean bias),
  which is exact and never builds the dense [R, n] output."""
  h = hidden(model, params, x)
  _, w, b = model.decode_hidden(params, h)
  if not model.output_activation:
    return h @ jnp.mean(w, axis=1) + jnp.mean(b)
  return jnp.mean(model.decode(params, h), axis=1)


def kernel(p_R: jax.Array, c_RxS: jax.Array, *, dot_scale: float, size: int) -> jax.Array:
  """K = reshape(dot_scale * p @ C, (size, size))."""
  return (dot_scale * (p_R @ c_RxS)).reshape(size, size)


def convolve(r_RxN: jax.Array, k_SxS: jax.Array) -> jax.Array:
  """relu of the 'SAME' (zero-padded) cross-correlation of r with k, [R, N]."""
  out = jax.lax.conv_general_dilated(
      r_RxN[None, None].astype(jnp.float32), k_SxS[None, None].astype(jnp.float32),
      window_strides=(1, 1), padding="SAME", dimension_numbers=("NCHW", "OIHW", "NCHW"))
  return jax.nn.relu(out[0, 0])


def model_kernel(model: KernelAutoEncoder, params, x, *, dot_scale: float) -> jax.Array:
  """The global kernel K of trained `params` on input rows `x`."""
  return kernel(row_means(model, params, x), params[GLOBAL_KERNEL], dot_scale=dot_scale,
                size=model.global_kernel_size)


def input_rows(model, params, train_csr: sp.csr_matrix, *, dot_scale: float
               ) -> sp.csr_matrix:
  """The rows the network reads: `train_csr` itself, or for a GLocal-K model
  (`model.global_kernel_rows` > 0) relu(R conv K) with the kernel of `params`."""
  if not getattr(model, "global_kernel_rows", 0):
    return train_csr
  dense = jnp.asarray(train_csr.toarray(), jnp.float32)
  conv = jax.jit(lambda p, r: convolve(r, model_kernel(model, p, r, dot_scale=dot_scale)))
  return sp.csr_matrix(np.asarray(conv(params, dense)))
