"""Model kinds, and the flax module a config's `model` group builds.

A kind is a builder `fn(model_cfg, num_inputs) -> flax module` of a network that maps
rating rows [batch, n] to predicted rows (the minibatch, stacked and serving code use
any such module through `apply` and its encode/decode accessors). The factorization
baselines (`svd`, `als`) are kinds too, trained by their own trainer; they build no
flax module here.
"""

from __future__ import annotations

from typing import Callable

from autorec_jax.models.autoencoder import AutoEncoder
from autorec_jax.models.kernel_net import KernelAutoEncoder

FACTORIZATION_KINDS = ("svd", "als")
_BUILDERS: dict[str, Callable] = {}


def register(kind: str, builder: Callable) -> None:
  """Makes `builder(model_cfg, num_inputs, num_rows)` the module of `model.kind=kind`."""
  _BUILDERS[kind] = builder


def kinds() -> tuple[str, ...]:
  """Every model.kind a config may name."""
  return tuple(_BUILDERS) + FACTORIZATION_KINDS


def hidden_widths(model_cfg, num_inputs: int) -> tuple[int, ...]:
  """model.hidden, or model.hidden_fractions of the input width when those are set."""
  if model_cfg.hidden_fractions:
    return tuple(max(1, int(round(f * num_inputs))) for f in model_cfg.hidden_fractions)
  return tuple(model_cfg.hidden)


def make_model(model_cfg, num_inputs: int | None = None, num_rows: int | None = None):
  """The module of the configured kind (num_inputs is needed only for
  hidden_fractions, num_rows, the number of input rows, only for a global kernel)."""
  kind = model_cfg.get("kind", "autoencoder")
  if kind not in _BUILDERS:
    raise ValueError(f"model.kind={kind!r} builds no network; known: {', '.join(_BUILDERS)}")
  return _BUILDERS[kind](model_cfg, num_inputs, num_rows)


def _kernel(model_cfg, num_inputs: int | None, num_rows: int | None) -> KernelAutoEncoder:
  if model_cfg.hidden_fractions and num_inputs is None:
    raise ValueError("model.hidden_fractions needs the input width")
  glocal = model_cfg.global_kernel.enabled
  if glocal and num_rows is None:
    raise ValueError("model.global_kernel needs the number of input rows")
  return KernelAutoEncoder(
      hidden=hidden_widths(model_cfg, num_inputs or 0), activation=model_cfg.activation,
      output_activation=model_cfg.output_activation, kernel_dim=model_cfg.kernel.dim,
      kernelized=tuple(model_cfg.kernel.layers),
      global_kernel_rows=num_rows if glocal else 0,
      global_kernel_size=model_cfg.global_kernel.size)


def _autoencoder(model_cfg, num_inputs: int | None, num_rows: int | None) -> AutoEncoder:
  del num_rows
  if model_cfg.hidden_fractions and num_inputs is None:
    raise ValueError("model.hidden_fractions needs the input width")
  hidden = hidden_widths(model_cfg, num_inputs or 0)
  return AutoEncoder(hidden=hidden, activation=model_cfg.activation,
                     output_activation=model_cfg.output_activation,
                     dropout=model_cfg.dropout, tied=model_cfg.tied,
                     kernel_init=model_cfg.kernel_init,
                     compute_dtype=model_cfg.get("compute_dtype", "float32"))


register("autoencoder", _autoencoder)
register("kernel", _kernel)
