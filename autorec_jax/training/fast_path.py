"""The optional native CPU path, found in one place.

autorec_jax.native (C++ XLA FFI kernels built on first use with the system compiler)
makes CPU training faster three ways: the first and output layers over a batch's
observed entries only (`model.input_path` sparse/auto), SGD with momentum as one
native pass per parameter array (`optim.fused`), and malloc settings that keep
XLA:CPU's per-step buffers in the heap. It is a plug-in behind two seams: the
model's sparse ops (autorec_jax.models.sparse, which it registers when imported) and
the train step's `update` (autorec_jax.training.step). This module is the only one
outside the package that imports it, and answers what to use: without it (the
folder left out of an install, or deleted) training takes the dense path and the
optax update and logs why; the results are the same to float tolerance, only
slower on CPU.
"""

from __future__ import annotations

from typing import Any, Callable

from absl import logging

from autorec_jax.config.checks import ConfigError
from autorec_jax.models.sparse import INPUT_PATHS
from autorec_jax.training.step import Update

try:
  from autorec_jax.native import fused_sgd as _fused_sgd
  from autorec_jax.native import host_memory as _host_memory
  from autorec_jax.native import sparse_input as _sparse_input
except ModuleNotFoundError as e:
  if e.name != "autorec_jax.native":  # a broken install, not an absent one
    raise
  _fused_sgd = _host_memory = _sparse_input = None

NOT_INSTALLED = "native CPU path not installed"


def installed() -> bool:
  """Whether autorec_jax.native is part of this install."""
  return _sparse_input is not None


def sparse_ops_available() -> tuple[bool, str]:
  """(True, '') where the native sparse ops can run here (installed, CPU, built),
  else (False, why)."""
  if _sparse_input is None:
    return False, NOT_INSTALLED
  return _sparse_input.available()


def choose_input_path(requested: str, *, num_devices: int,
                      density: float | None = None) -> tuple[str, str]:
  """('dense' or 'sparse', why) for `model.input_path` = `requested`.

  `auto` is sparse where the native kernels can run (one CPU device) and the train
  matrix's `density` (stored / all entries) is low enough to pay
  (autorec_jax.native.sparse_input.resolve), else dense; it never fails. `sparse`
  where it cannot run raises ConfigError with a one-line reason.
  """
  if requested not in INPUT_PATHS:
    raise ConfigError(f"model.input_path={requested!r} must be one of {list(INPUT_PATHS)}")
  if _sparse_input is None:
    if requested == "sparse":
      raise ConfigError("model.input_path=sparse needs the native CPU path "
                        "(autorec_jax.native), which is not installed; use auto or dense")
    return "dense", "asked for" if requested == "dense" else f"auto: {NOT_INSTALLED}"
  try:
    return _sparse_input.resolve(requested, num_devices=num_devices, density=density)
  except _sparse_input.KernelUnavailable as e:
    raise ConfigError(str(e)) from e


def choose_update(optim_cfg: Any, model: Any, *, num_devices: int
                  ) -> Callable[[Callable[[Any], Any]], Update] | None:
  """The optimizer update to train with, logged once with the reason.

  Where the native fused SGD replaces `optim_cfg`'s optax update exactly
  (autorec_jax.native.fused_sgd.applies), a function from the per-update learning
  rate (autorec_jax.training.optim.learning_rate_fn's) to the train step's `update`
  for `model`; else None: make_train_step's default, the optax update.
  """
  if _fused_sgd is None:
    fused, why = False, NOT_INSTALLED
  else:
    fused, why = _fused_sgd.applies(optim_cfg, num_devices=num_devices)
  logging.info("optimizer update: %s", "native, fused (autorec_jax.native.fused_sgd)"
               if fused else f"optax ({why})")
  if not fused:
    return None
  momentum = optim_cfg.momentum

  def update_for(learning_rate: Callable[[Any], Any]) -> Update:
    return _fused_sgd.make_update(
        _fused_sgd.FusedSgd(momentum=momentum, learning_rate=learning_rate), model)

  return update_for


def tune_malloc() -> bool:
  """autorec_jax.native.host_memory.tune_malloc() where installed (call it before JAX
  computes anything); True when the settings took effect, False without the native
  path (glibc's defaults stay)."""
  return _host_memory.tune_malloc() if _host_memory is not None else False
