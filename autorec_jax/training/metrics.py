"""A CLU-shaped metric writer (absl logging + JSONL + TensorBoard) and a NaN guard.

Only process 0 writes files; other processes just log, as CLU's `just_logging`.
"""

from __future__ import annotations

import json
import math
import os
from typing import Any

import jax
from absl import logging


class MetricWriter:
  """`write_scalars(step, dict)`, `write_hparams(dict)`, `flush()`, `close()`.

  JSONL rows are `{"step": s, **scalars}`; the train loop adds `epoch`. TensorBoard
  event files go to `workdir/tensorboard` (tensorboardX: a small, well-kept writer of
  the event format, so no TensorFlow is needed).
  """

  def __init__(self, workdir: str, *, jsonl_name: str = "metrics.jsonl",
               tensorboard: bool = True):
    self._write = jax.process_index() == 0
    self._jsonl = None
    self._tb = None
    if self._write:
      os.makedirs(workdir, exist_ok=True)
      self._jsonl = open(os.path.join(workdir, jsonl_name), "a", encoding="utf-8")
      if tensorboard:
        from tensorboardX import SummaryWriter  # pylint: disable=import-outside-toplevel
        self._tb = SummaryWriter(os.path.join(workdir, "tensorboard"))

  def write_scalars(self, step: int, scalars: dict[str, Any]) -> None:
    clean = {k: (float(v) if not isinstance(v, (int, str)) else v) for k, v in scalars.items()}
    logging.debug("step %d: %s", step, ", ".join(f"{k}={_fmt(v)}" for k, v in clean.items()))
    if not self._write:
      return
    self._jsonl.write(json.dumps({"step": int(step), **clean}) + "\n")
    if self._tb is not None:
      for k, v in clean.items():
        if isinstance(v, (int, float)) and k not in ("step", "epoch"):
          self._tb.add_scalar(k.replace("@", "_at_"), v, global_step=step)

  def write_hparams(self, hparams: dict[str, Any]) -> None:
    logging.debug("hparams: %s", hparams)
    if self._tb is not None:
      flat = {k: (v if isinstance(v, (int, float, str, bool)) else str(v))
              for k, v in hparams.items()}
      self._tb.add_text("hparams", json.dumps(flat, indent=1), 0)

  def flush(self) -> None:
    if self._jsonl is not None:
      self._jsonl.flush()
    if self._tb is not None:
      self._tb.flush()

  def close(self) -> None:
    self.flush()
    if self._jsonl is not None:
      self._jsonl.close()
    if self._tb is not None:
      self._tb.close()


def _fmt(v: Any) -> str:
  return f"{v:.5g}" if isinstance(v, float) else str(v)


def truncate_jsonl(path: str, last_epoch: int) -> None:
  """Drops rows written after `last_epoch` (a killed run's evals past its checkpoint)."""
  if not os.path.exists(path):
    return
  with open(path, encoding="utf-8") as f:
    rows = [line for line in f if line.strip()]
  keep = [r for r in rows if json.loads(r).get("epoch", 0) <= last_epoch]
  tmp = path + ".tmp"
  with open(tmp, "w", encoding="utf-8") as f:
    f.writelines(keep)
  os.replace(tmp, path)


def check_finite(value: float, *, what: str, epoch: int, step: int) -> None:
  """Raises FloatingPointError if a fetched loss is NaN or infinite."""
  if not math.isfinite(value):
    raise FloatingPointError(
        f"{what} became {value} at epoch {epoch} (step {step}); the learning rate is "
        "likely too high for this model (try a lower optim.learning_rate or "
        "optim.grad_clip_norm)")
