"""The deep autoencoder of AutoRec / DeepRec as a pure flax.linen module.

`AutoEncoder(hidden=(512, 512, 1024))` on an input of width n is the DeepRec network
n, 512, 512, 1024, dp, 512, 512, n: the decoder mirrors the encoder, dropout acts on
the code (the encoder's output) only, and a tied (constrained) decoder reuses the
transposed encoder kernels with biases of its own. Kernels are stored [in, out],
except the output layer's, stored items-major [n, w] (`dec{L-1}_kernel`; checkpoints
of the earlier [w, n] layout are transposed on restore, autorec_jax.artifacts.checkpoint).
"""

from __future__ import annotations

import re
from typing import Callable, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from autorec_jax.models import sparse as sparse_ops
from autorec_jax.models.dropout import Dropout

ACTIVATIONS: dict[str, Callable[[jax.Array], jax.Array]] = {
    "selu": jax.nn.selu,
    "elu": jax.nn.elu,
    "lrelu": jax.nn.leaky_relu,  # negative slope 0.01, as torch's LeakyReLU
    "relu": jax.nn.relu,
    "relu6": jax.nn.relu6,
    "sigmoid": jax.nn.sigmoid,
    "tanh": jnp.tanh,
    "swish": jax.nn.swish,
    "identity": lambda x: x,
}

COMPUTE_DTYPES = {"float32": jnp.float32, "bfloat16": jnp.bfloat16}
# What AutoEncoder returns: dense rows, predictions at the listed entries, or both
# (the dense ones without gradient); see AutoEncoder.__call__.
OUTPUTS = ("dense", "entries", "entries+dense")
# With `deferred_kernel_grads`: the perturbations (flax's "perturbations" collection)
# whose gradients, with the sown last hidden layer ("intermediates"), give the first
# and output kernels' gradients from the batch's entries (the native plug-in's update,
# autorec_jax.native.fused_sgd, sums them inside the optimizer step).
INPUT_KERNEL = "enc0_kernel"  # the first layer's kernel parameter, [n, w_1]
FIRST_LAYER_PRODUCT = "first_layer_product"  # x @ W, [batch, w_1]
OUTPUT_AT_ENTRIES = "output_at_entries"  # h @ V^T + c at the entries, [E]
_DECODER_KERNEL = re.compile(r"dec(\d+)_kernel")
LAST_HIDDEN = "last_hidden"  # h, the output layer's input, float32 [batch, w_1]


def output_kernel_name(hidden: Sequence[int]) -> str:
  """The output layer's kernel parameter of an untied AutoEncoder with `hidden`."""
  return f"dec{len(hidden) - 1}_kernel"


def output_bias_name(hidden: Sequence[int]) -> str:
  """The output layer's bias parameter of an AutoEncoder with `hidden`."""
  return f"dec{len(hidden) - 1}_bias"


def _low_precision_matmul(dtype, *, transposed: bool = False):
  """x @ w with both operands in `dtype` and float32 accumulation and result, in the
  forward pass and in both gradient products (mixed precision: the float32 master
  weights are only rounded for the products). With `transposed`, w is stored
  [out, in] and the product is x @ w.T."""

  # Contracting dimensions named, not transposed operands: XLA:CPU runs g @ w.T
  # through a slow path for bfloat16 (measured 2x slower than this form).
  def dot_t(a, b):
    return jax.lax.dot_general(a, b, (((1,), (1,)), ((), ())),
                               preferred_element_type=jnp.float32)

  @jax.custom_vjp
  def matmul(x, w):
    if transposed:
      return dot_t(x.astype(dtype), w.astype(dtype))
    return jnp.dot(x.astype(dtype), w.astype(dtype), preferred_element_type=jnp.float32)

  def fwd(x, w):
    # The weight gradient's operand is kept as x^T (or x, for w [out, in]),
    # transposed and rounded in one pass: XLA:CPU runs x^T @ g written as a
    # contraction over the batch at float32 speed, and the barrier stops it folding
    # the transpose back into that form (whole bfloat16 ML-1M steps 4-7% faster,
    # measured).
    xl = x.astype(dtype) if transposed else jax.lax.optimization_barrier(x.T.astype(dtype))
    return matmul(x, w), (xl, w.astype(dtype))

  def bwd(res, g):
    xl, wl = res
    gl = g.astype(dtype)
    if transposed:  # w [out, in]: dx = g @ w, dw = g^T @ x (g^T made, as x^T above)
      gt = jax.lax.optimization_barrier(g.T.astype(dtype))
      return (jnp.dot(gl, wl, preferred_element_type=jnp.float32),
              jnp.dot(gt, xl, preferred_element_type=jnp.float32))
    return dot_t(gl, wl), jnp.dot(xl, gl, preferred_element_type=jnp.float32)

  matmul.defvjp(fwd, bwd)
  return matmul


def _float32_matmul(x, w):
  return x @ w


def _float32_matmul_t(x, w):
  return jax.lax.dot_general(x, w, (((1,), (1,)), ((), ())))


def _transposed_init(init):
  """`init` drawn for the [in, out] shape and stored transposed: the same values
  (and fan-in) as a kernel stored [in, out]."""
  return lambda key, shape, dtype=jnp.float32: init(key, shape[::-1], dtype).T


INITIALIZERS = {
    # Glorot/Xavier uniform, as DeepRec.
    "xavier": nn.initializers.xavier_uniform(),
    # U[-1/sqrt(fan_in), 1/sqrt(fan_in)], as Strub & Mary (and torch's nn.Linear).
    "fan_in": nn.initializers.variance_scaling(1.0 / 3.0, "fan_in", "uniform"),
}


class AutoEncoder(nn.Module):
  """Dense autoencoder predicting a full rating vector from a sparse one.

  Attributes:
    hidden: encoder widths; the last is the code. The decoder mirrors the rest and
      ends at the input width.
    activation: a key of ACTIVATIONS, used after every layer except possibly the last.
    output_activation: apply the activation to the output layer too (DeepRec does
      for unbounded activations; keep False for sigmoid/tanh on a 1..5 scale).
    dropout: drop probability on the code layer while training.
    tied: decoder kernels are the transposed encoder kernels (constrained model).
    kernel_init: a key of INITIALIZERS for the kernels; biases start at zero.
    compute_dtype: a key of COMPUTE_DTYPES: the operand type of the layers' matrix
      products. "bfloat16" rounds activations and weights for the products only;
      parameters, accumulation, biases, activations and the loss stay float32.
  """

  hidden: Sequence[int]
  activation: str = "selu"
  output_activation: bool = False
  dropout: float = 0.0
  tied: bool = False
  kernel_init: str = "xavier"
  compute_dtype: str = "float32"

  @nn.compact
  def __call__(self, x: jax.Array | sparse_ops.SparseRows, *, train: bool,
               output: str = "dense", deferred_kernel_grads: bool = False):
    """Maps rating rows [batch, n] to predicted rows [batch, n].

    `x` is the dense [batch, n] input, or a `sparse_ops.SparseRows` listing its
    nonzeros: the first layer is then computed from those entries only, in float32,
    by the registered sparse ops (autorec_jax.models.sparse; raises
    SparseOpsUnavailable where none are); same result as with `x.todense()`. With sparse
    rows, `output` (a key of OUTPUTS) can also ask for the predictions at the listed
    entries only, [E] (0 past count), all a loss over the observed entries needs:
    "entries" computes the output layer there alone (float32, the sparse ops too);
    "entries+dense" returns them with the dense [batch, n] output as a constant (no
    gradient flows through it: a re-feeding pass's input), so the output layer's
    gradients still run over the entries only.

    `deferred_kernel_grads` (sparse rows, an output at the entries) leaves the first
    and output kernels' gradients to the optimizer: the two products see those kernels
    as constants (no [n, w_1] gradient is built), x @ W and the output at the entries
    carry the perturbations FIRST_LAYER_PRODUCT and OUTPUT_AT_ENTRIES, and the output
    layer's input is sown as LAST_HIDDEN. The kernels' gradients are then
    x^T @ (gradient of FIRST_LAYER_PRODUCT) and G^T @ LAST_HIDDEN, G the gradient of
    OUTPUT_AT_ENTRIES at the entries (their sum for a tied decoder, whose output
    kernel is the first; an update given them as factors can sum them itself). The
    outputs are unchanged.
    """
    if not self.hidden:
      raise ValueError("AutoEncoder needs at least one hidden layer")
    if output not in OUTPUTS:
      raise ValueError(f"output={output!r} must be one of {OUTPUTS}")
    sparse = isinstance(x, sparse_ops.SparseRows)
    if output != "dense" and not sparse:
      raise ValueError(f"output={output!r} needs the input as SparseRows")
    if deferred_kernel_grads and output == "dense":
      raise ValueError("deferred_kernel_grads needs an output at the entries")
    act = ACTIVATIONS[self.activation]
    kernel_init = INITIALIZERS[self.kernel_init]
    if self.compute_dtype == "float32":
      matmul, matmul_t = _float32_matmul, _float32_matmul_t
    else:
      matmul = _low_precision_matmul(COMPUTE_DTYPES[self.compute_dtype])
      matmul_t = _low_precision_matmul(COMPUTE_DTYPES[self.compute_dtype], transposed=True)
    num_inputs = x.shape[-1]
    widths = [num_inputs, *self.hidden]

    h = x
    enc_kernels = []
    for i, (n_in, n_out) in enumerate(zip(widths[:-1], widths[1:])):
      kernel = self.param(INPUT_KERNEL if i == 0 else f"enc{i}_kernel", kernel_init,
                          (n_in, n_out))
      bias = self.param(f"enc{i}_bias", nn.initializers.zeros, (n_out,))
      enc_kernels.append(kernel)
      if i == 0 and sparse:
        if deferred_kernel_grads:
          product = self.perturb(FIRST_LAYER_PRODUCT, sparse_ops.input_matmul(
              x, jax.lax.stop_gradient(kernel)))
        else:
          product = sparse_ops.input_matmul(x, kernel)
        h = act(product + bias[None, :])
      else:
        h = act(matmul(h, kernel) + bias[None, :])

    if self.dropout > 0.0:
      h = Dropout(rate=self.dropout, deterministic=not train)(h)

    num_layers = len(self.hidden)
    for j in range(num_layers - 1):
      enc_index = num_layers - 1 - j
      n_in, n_out = widths[enc_index + 1], widths[enc_index]
      if self.tied:
        kernel = enc_kernels[enc_index].T
      else:
        kernel = self.param(f"dec{j}_kernel", kernel_init, (n_in, n_out))
      bias = self.param(f"dec{j}_bias", nn.initializers.zeros, (n_out,))
      h = act(matmul(h, kernel) + bias[None, :])

    # The output layer's kernel is items-major, [n, w_last] (a tied decoder's is the
    # first encoder kernel itself): the sparse output kernels read and write an item's
    # weights as one contiguous row (1.6-1.9x faster than the [w, n] layout, whose tiles
    # they transposed, measured), and no weight is ever transposed.
    j = num_layers - 1
    if self.tied:
      out_kernel = enc_kernels[0]
    else:
      out_kernel = self.param(output_kernel_name(self.hidden), _transposed_init(kernel_init),
                              (num_inputs, widths[1]))
    bias = self.param(output_bias_name(self.hidden), nn.initializers.zeros, (num_inputs,))
    if output != "dense":
      if deferred_kernel_grads:
        self.sow("intermediates", LAST_HIDDEN, h.astype(jnp.float32))
        at_entries = self.perturb(OUTPUT_AT_ENTRIES, sparse_ops.output_matmul(
            h, jax.lax.stop_gradient(out_kernel), bias, x.row, x.col, x.count))
      else:
        at_entries = sparse_ops.output_matmul(h, out_kernel, bias, x.row, x.col, x.count)
      if self.output_activation:
        at_entries = act(at_entries)
      if output == "entries":
        return at_entries
      dense = jax.lax.stop_gradient(matmul_t(h, out_kernel) + bias[None, :])
      return at_entries, act(dense) if self.output_activation else dense
    h = matmul_t(h, out_kernel) + bias[None, :]
    return act(h) if self.output_activation else h


  # --- The trained network's parts (unbound use: `model.encode(params, x)`). The
  # parameter names stay in this module; everything else reads the network through
  # these methods. They follow the dense path of __call__ in eval mode (no dropout),
  # with the same matrix products (compute_dtype), so decode(encode(x)) == apply.

  def encode(self, params, x_BxN: jax.Array) -> jax.Array:
    """The code (the encoder's output) of dense input rows."""
    act = ACTIVATIONS[self.activation]
    matmul, _ = _products(self.compute_dtype)
    h = x_BxN
    for i in range(len(self.hidden)):
      h = act(matmul(h, params[_enc_kernel(i)]) + params[f"enc{i}_bias"][None, :])
    return h

  def decode_hidden(self, params, code_BxC: jax.Array):
    """(h_BxH, kernel_HxN, bias_N): the output layer's input and that layer (its
    kernel as an [in, out] view of the items-major stored one)."""
    act = ACTIVATIONS[self.activation]
    matmul, _ = _products(self.compute_dtype)
    num = len(self.hidden)
    h = code_BxC
    for j in range(num - 1):
      kernel = (params[_enc_kernel(num - 1 - j)].T if self.tied
                else params[f"dec{j}_kernel"])
      h = act(matmul(h, kernel) + params[f"dec{j}_bias"][None, :])
    return h, self.output_kernel(params).T, params[output_bias_name(self.hidden)]

  def decode(self, params, code_BxC: jax.Array) -> jax.Array:
    """The output rows of codes."""
    h, _, bias = self.decode_hidden(params, code_BxC)
    _, matmul_t = _products(self.compute_dtype)
    out = matmul_t(h, self.output_kernel(params)) + bias[None, :]
    return ACTIVATIONS[self.activation](out) if self.output_activation else out

  def penultimate(self, params, x_BxN: jax.Array):
    """`decode_hidden` of the code of `x_BxN`."""
    return self.decode_hidden(params, self.encode(params, x_BxN))

  @staticmethod
  def first_layer(params) -> tuple[jax.Array, jax.Array]:
    """(kernel [n, w_1], bias [w_1]) of the first encoder layer."""
    return params[INPUT_KERNEL], params["enc0_bias"]

  def output_kernel(self, params) -> jax.Array:
    """The output layer's kernel, stored items-major [n, w_last] (a tied decoder's is
    the first encoder kernel)."""
    return params[INPUT_KERNEL] if self.tied else params[output_kernel_name(self.hidden)]

  @staticmethod
  def stack(outer, inner) -> dict:
    """n-h1-h2-h1-n parameters (an untied AutoEncoder with hidden (h1, h2)) from a
    trained outer n-h1-n and inner h1-h2-h1 network (Strub & Mary's layer-wise
    training): the inner network's output layer becomes a middle layer ([in, out]),
    the outer's stays last (items-major)."""
    return {"enc0_kernel": outer["enc0_kernel"], "enc0_bias": outer["enc0_bias"],
            "enc1_kernel": inner["enc0_kernel"], "enc1_bias": inner["enc0_bias"],
            "dec0_kernel": inner["dec0_kernel"].T, "dec0_bias": inner["dec0_bias"],
            "dec1_kernel": outer["dec0_kernel"], "dec1_bias": outer["dec0_bias"]}


def _enc_kernel(i: int) -> str:
  return INPUT_KERNEL if i == 0 else f"enc{i}_kernel"


def _products(compute_dtype: str):
  """(x @ w, x @ w.T) in the operand type `compute_dtype` (float32 accumulation)."""
  if compute_dtype == "float32":
    return _float32_matmul, _float32_matmul_t
  dtype = COMPUTE_DTYPES[compute_dtype]
  return _low_precision_matmul(dtype), _low_precision_matmul(dtype, transposed=True)


def output_kernel_paths(tree) -> set:
  """Paths of the leaves of `tree` (a params or train-state pytree) named after an
  untied AutoEncoder's output kernel (the decoder kernel of the highest index): the
  parameter and its optimizer slots. Checkpoints of the earlier [w, n] layout have
  these transposed on restore."""
  def name(path):
    key = path[-1] if path else None
    return getattr(key, "key", getattr(key, "name", None))

  paths = [path for path, _ in jax.tree_util.tree_flatten_with_path(tree)[0]]
  indices = [int(m.group(1)) for p in paths
             if isinstance(name(p), str) and (m := _DECODER_KERNEL.fullmatch(name(p)))]
  if not indices:
    return set()
  last = f"dec{max(indices)}_kernel"
  return {p for p in paths if name(p) == last}


def count_params(params) -> int:
  """Number of scalar parameters in a pytree."""
  return int(sum(x.size for x in jax.tree.leaves(params)))
