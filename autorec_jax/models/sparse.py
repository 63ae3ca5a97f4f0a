"""A batch given by its observed entries, and the model's two sparse products.

The autoencoder can compute its first layer from a batch's entry lists (`SparseRows`)
instead of the dense [batch, n] input, and its output layer at those entries only
(all a loss over the observed entries needs). Both products are plain functions of
arrays, but fast versions of them are native code (autorec_jax.native.sparse_input:
XLA FFI kernels built with the system C++ compiler), an optional part of the toolkit.
This module is the seam between the two: the model calls `input_matmul` and
`output_matmul`, which run whichever implementation a plug-in gave `register`; with
none registered they raise `SparseOpsUnavailable`, and training takes the dense path
(`model.input_path`, chosen in autorec_jax.training.fast_path).
"""

from __future__ import annotations

from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

# model.input_path: dense matmuls, the sparse ops over the observed entries, or the
# sparse ops where they are available and pay (autorec_jax.training.fast_path).
INPUT_PATHS = ("dense", "sparse", "auto")


class SparseOpsUnavailable(RuntimeError):
  """The model was given sparse rows but no implementation of the sparse ops is
  registered (the optional native CPU path is not installed or not loaded)."""


@struct.dataclass
class SparseRows:
  """A [num_rows, num_cols] batch given by its entries: value `val[e]` at (`row[e]`,
  `col[e]`) for e < `count[0]`, zero elsewhere. The lists have a fixed capacity (so
  nothing recompiles); entries past `count` are padding that nothing reads."""

  row: jax.Array  # int32[E]
  col: jax.Array  # int32[E]
  val: jax.Array  # float32[E]
  count: jax.Array  # int32[1]
  shape: tuple[int, int] = struct.field(pytree_node=False)

  def valid(self) -> jax.Array:
    """1.0 for the listed entries, 0.0 for the padding past `count`, float32[E]."""
    return (jnp.arange(self.row.shape[0]) < self.count[0]).astype(jnp.float32)

  def todense(self) -> jax.Array:
    """The dense [num_rows, num_cols] matrix (for tests and small inputs)."""
    return jnp.zeros(self.shape, jnp.float32).at[self.row, self.col].add(
        self.val * self.valid())

  @classmethod
  def from_dense(cls, x_BxI, capacity: int | None = None) -> "SparseRows":
    """The nonzeros of a dense host array, padded to `capacity` (for tests and tools:
    training batches come listed from the batcher)."""
    x = np.asarray(x_BxI, np.float32)
    r, c = np.nonzero(x)
    capacity = max(capacity or len(r), len(r), 1)
    pad = capacity - len(r)
    fill_r, fill_c = (r[-1], c[-1]) if len(r) else (0, 0)
    return cls(row=jnp.asarray(np.concatenate([r, np.full(pad, fill_r)]), jnp.int32),
               col=jnp.asarray(np.concatenate([c, np.full(pad, fill_c)]), jnp.int32),
               val=jnp.asarray(np.concatenate([x[r, c], np.zeros(pad)]), jnp.float32),
               count=jnp.asarray([len(r)], jnp.int32), shape=tuple(x.shape))


class SparseOps(NamedTuple):
  """An implementation of the two products (see `input_matmul`, `output_matmul`)."""

  name: str
  input_matmul: Callable[[SparseRows, jax.Array], jax.Array]
  output_matmul: Callable[..., jax.Array]


_ops: SparseOps | None = None


def register(name: str, input_matmul: Callable[[SparseRows, jax.Array], jax.Array],
             output_matmul: Callable[..., jax.Array]) -> None:
  """Makes `input_matmul` and `output_matmul` (same signatures and gradients as the
  functions of this module) the implementation the model uses; the last one
  registered wins."""
  global _ops  # pylint: disable=global-statement
  _ops = SparseOps(name, input_matmul, output_matmul)


def registered() -> str | None:
  """The name of the registered implementation, or None."""
  return _ops.name if _ops is not None else None


def _require() -> SparseOps:
  if _ops is None:
    raise SparseOpsUnavailable(
        "the model got sparse rows but no sparse ops are registered (they come with "
        "the native CPU path, autorec_jax.native); use model.input_path=dense")
  return _ops


def input_matmul(x: SparseRows, w_IxH: jax.Array) -> jax.Array:
  """x.todense() @ w from x's listed entries, float32 [B, H], differentiable in x's
  values and in w."""
  return _require().input_matmul(x, w_IxH)


def output_matmul(h_BxH: jax.Array, v_IxH: jax.Array, c_I: jax.Array, row_E: jax.Array,
                  col_E: jax.Array, count: jax.Array) -> jax.Array:
  """(h @ v.T + c)[row[e], col[e]] for every listed entry e, 0 past `count`; float32
  [E]. `v` is the output kernel stored items-major, [I, H]; differentiable in h, v
  and c (where v is a constant, stop_gradient, its gradient need not be computed)."""
  return _require().output_matmul(h_BxH, v_IxH, c_I, row_E, col_E, count)
