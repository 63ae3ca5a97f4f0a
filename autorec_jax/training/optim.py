"""Optimizers and learning-rate schedules built from `config.optim`.

Weight decay is L2 added to the gradient of every kernel (as torch's `weight_decay`,
which DeepRec uses), except for AdamW, where it is AdamW's decoupled decay. Biases are
not decayed.
"""

from __future__ import annotations

from typing import Sequence

import jax
import optax

OPTIMIZERS = ("sgd", "adam", "adamw", "rmsprop", "adagrad")
SCHEDULES = ("constant", "multistep", "exponential", "inverse_time")


def make_schedule(*, learning_rate: float, schedule: str, steps_per_epoch: int,
                  decay_rate: float = 1.0,
                  decay_epochs: Sequence[int] = ()) -> optax.Schedule:
  """Learning rate as a function of the step.

  - constant: `learning_rate` throughout.
  - multistep: multiplied by `decay_rate` at the start of each epoch in
    `decay_epochs` (DeepRec's MultiStepLR, e.g. (24, 36, 48, 66, 72) and 0.5).
  - exponential: multiplied by `decay_rate` once per epoch, smoothly.
  - inverse_time: learning_rate / (1 + decay_rate * epoch), Torch's
    `learningRateDecay` counted in epochs (Strub & Mary's "learning decay").
  """
  if schedule == "constant":
    return optax.constant_schedule(learning_rate)
  if schedule == "multistep":
    boundaries = {int(e) * steps_per_epoch: decay_rate for e in decay_epochs}
    return optax.piecewise_constant_schedule(learning_rate, boundaries)
  if schedule == "exponential":
    return optax.exponential_decay(learning_rate, transition_steps=steps_per_epoch,
                                   decay_rate=decay_rate)
  if schedule == "inverse_time":
    return lambda step: learning_rate / (1.0 + decay_rate * step / steps_per_epoch)
  raise ValueError(f"optim.schedule must be one of {SCHEDULES}, got {schedule!r}")


def _kernels_only(params):
  return jax.tree.map(lambda p: p.ndim >= 2, params)


def make_optimizer(*, name: str, learning_rate: optax.ScalarOrSchedule,
                   momentum: float = 0.0, nesterov: bool = False,
                   weight_decay: float = 0.0, beta1: float = 0.9, beta2: float = 0.999,
                   eps: float = 1e-8, grad_clip_norm: float | None = None
                   ) -> optax.GradientTransformation:
  """An optax transformation with every hyperparameter explicit (no hidden defaults)."""
  if name == "sgd":
    base = optax.sgd(learning_rate, momentum=momentum or None, nesterov=nesterov)
  elif name == "adam":
    base = optax.adam(learning_rate, b1=beta1, b2=beta2, eps=eps)
  elif name == "adamw":
    base = optax.adamw(learning_rate, b1=beta1, b2=beta2, eps=eps,
                       weight_decay=weight_decay, mask=_kernels_only)
  elif name == "rmsprop":
    base = optax.rmsprop(learning_rate, decay=beta2, eps=eps, momentum=momentum or None,
                         nesterov=nesterov)
  elif name == "adagrad":
    base = optax.adagrad(learning_rate, eps=eps)
  else:
    raise ValueError(f"optim.name must be one of {OPTIMIZERS}, got {name!r}")
  parts = []
  if grad_clip_norm:
    parts.append(optax.clip_by_global_norm(grad_clip_norm))
  if weight_decay and name != "adamw":
    parts.append(optax.add_decayed_weights(weight_decay, mask=_kernels_only))
  return optax.chain(*parts, base)


def learning_rate_fn(optim_cfg, steps_per_epoch: int, *, lr_scale: float = 1.0,
                     updates_per_step: int = 1) -> tuple[optax.Schedule, optax.Schedule]:
  """(the learning rate per optimizer update, the same per train step).

  A train step with dense re-feeding makes `updates_per_step` optimizer updates; the
  schedule is counted in train steps, so every update of a step uses that step's
  learning rate. `lr_scale` multiplies the learning rate (a run rolled back after a
  NaN loss).
  """
  schedule = make_schedule(
      learning_rate=optim_cfg.learning_rate * lr_scale, schedule=optim_cfg.schedule,
      steps_per_epoch=steps_per_epoch, decay_rate=optim_cfg.decay_rate,
      decay_epochs=tuple(optim_cfg.decay_epochs))
  per_update = schedule if updates_per_step == 1 else (
      lambda count: schedule(count // updates_per_step))
  return per_update, schedule


def from_config(optim_cfg, steps_per_epoch: int, *, lr_scale: float = 1.0,
                updates_per_step: int = 1
                ) -> tuple[optax.GradientTransformation, optax.Schedule]:
  """The optimizer and its schedule (per train step) for a `config.optim` group
  (`learning_rate_fn` says how re-feeding's updates and `lr_scale` count); the
  optimizer state's structure does not depend on them."""
  per_update, schedule = learning_rate_fn(optim_cfg, steps_per_epoch, lr_scale=lr_scale,
                                          updates_per_step=updates_per_step)
  tx = make_optimizer(
      name=optim_cfg.name, learning_rate=per_update, momentum=optim_cfg.momentum,
      nesterov=optim_cfg.nesterov, weight_decay=optim_cfg.weight_decay,
      beta1=optim_cfg.beta1, beta2=optim_cfg.beta2, eps=optim_cfg.eps,
      grad_clip_norm=optim_cfg.grad_clip_norm)
  return tx, schedule
