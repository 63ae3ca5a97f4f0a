"""An early memory estimate, so a model too big for the device fails before training.

The estimate counts float32 parameters, gradients and optimizer slots (replicated on
every device), the activations of one local batch (inputs, masks, hidden layers and
outputs, with their gradients), and the host's batch buffers. It is a lower bound of
the real peak, so it errs towards letting a borderline run try.
"""

from __future__ import annotations

import os
import platform

import jax

from autorec_jax.config.checks import ConfigError

_SLOTS = {"sgd": 1, "adam": 2, "adamw": 2, "rmsprop": 2, "adagrad": 1}
GIB = 1024 ** 3


def estimate(*, num_inputs: int, hidden: tuple[int, ...], tied: bool, optimizer: str,
             batch_rows: int, eval_rows: int) -> dict[str, int]:
  """Bytes per device (params+optimizer, activations) for one train step."""
  widths = [num_inputs, *hidden]
  enc = sum(a * b + b for a, b in zip(widths[:-1], widths[1:]))
  dec = sum(b * a + a for a, b in zip(widths[:-1], widths[1:]))
  if tied:
    dec -= sum(a * b for a, b in zip(widths[:-1], widths[1:]))
  params = enc + dec
  state = 4 * params * (2 + _SLOTS.get(optimizer, 2))  # params, grads, slots
  per_row = 6 * num_inputs + 4 * sum(hidden)  # x, mask, pred, error, grads; hidden
  activations = 4 * max(batch_rows * per_row, eval_rows * 5 * num_inputs)
  return {"params": params, "state_bytes": state, "activation_bytes": activations,
          "total_bytes": state + activations}


def device_limit_bytes() -> int | None:
  """Memory of one local device: the accelerator's limit, or the host's free RAM."""
  device = jax.local_devices()[0]
  stats = device.memory_stats() if hasattr(device, "memory_stats") else None
  if stats and stats.get("bytes_limit"):
    return int(stats["bytes_limit"])
  try:
    return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
  except (ValueError, OSError):
    return None


def check_fits(need: dict[str, int], limit: int | None, *, devices: int) -> None:
  """Raises ConfigError with the estimate when a run cannot fit."""
  if limit is None:
    return
  total = need["total_bytes"] * (devices if jax.devices()[0].platform == "cpu" else 1)
  if total > limit:
    raise ConfigError(
        f"the model does not fit: about {total / GIB:.1f} GiB needed "
        f"({need['params']:,} parameters with gradients and optimizer state "
        f"{need['state_bytes'] / GIB:.1f} GiB, activations of one batch "
        f"{need['activation_bytes'] / GIB:.1f} GiB) but {limit / GIB:.1f} GiB is "
        "available; lower model.hidden, train.batch_size or eval.batch_size")


def cpu_name() -> str:
  """The CPU's model name (`/proc/cpuinfo`, else `platform.processor()`), for the
  machine line of measurement tables."""
  try:
    with open("/proc/cpuinfo", encoding="utf-8") as f:
      line = next((l for l in f if l.startswith("model name")), None)
  except OSError:
    line = None
  return line.split(":", 1)[1].strip() if line else platform.processor()
