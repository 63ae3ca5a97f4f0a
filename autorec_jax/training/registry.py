"""The trainers, by name, and which one a config names.

A trainer is `fn(cfg, workdir) -> results dict`: it validates the config, trains,
writes the workdir (config.json, data snapshot, checkpoints, metrics.jsonl,
results.json) and evaluates the best-by-validation model on test. A new model
family adds a trainer module and one `register` call here; `main` and serving need
no edit.
"""

from __future__ import annotations

from typing import Callable

from autorec_jax.config.checks import ConfigError
from autorec_jax.models.registry import FACTORIZATION_KINDS
from autorec_jax.training import factorization, full_batch, loop, stacked

Trainer = Callable[..., dict]
_TRAINERS: dict[str, Trainer] = {}


def register(name: str, trainer: Trainer) -> None:
  """Makes `trainer` the one `select` returns for configs naming `name`."""
  _TRAINERS[name] = trainer


def name_of(cfg) -> str:
  """The trainer a config names: `model.kind` for the factorization baselines,
  "stacked" for Strub & Mary's layer-wise training, "kernel" (full-batch L-BFGS) for
  the kernel networks, else the minibatch "autoencoder" trainer."""
  if cfg.model.kind in FACTORIZATION_KINDS:
    return cfg.model.kind
  if cfg.stacked.enabled:
    return "stacked"
  return cfg.model.kind


def select(cfg) -> Trainer:
  """The trainer of `cfg` (ConfigError naming the known ones when there is none)."""
  name = name_of(cfg)
  if name not in _TRAINERS:
    raise ConfigError(f"no trainer for model.kind={name!r}; known: {', '.join(_TRAINERS)}")
  return _TRAINERS[name]


register("autoencoder", loop.train_and_evaluate)
register("stacked", stacked.train_stacked)
register("kernel", full_batch.train_full_batch)
for _kind in FACTORIZATION_KINDS:
  register(_kind, factorization.train_and_evaluate_factorization)
