"""When the minibatch trainer writes its checkpoints: never losing the best state,
and spending a bounded share of the run on writes.

A checkpoint write costs a fixed 0.1-0.5 s on a CPU host (orbax's threads and
fsyncs) whatever the model's size, which on a small data set is more than an epoch
of training. So an epoch-end checkpoint is written only when `ckpt.every_secs`
seconds have passed since the last write, at the last epoch, and before any other
write or restore. In between, a new best-by-validation state is held as a host copy
and written first at the next write, so the best checkpoint on disk is always the
best of the epochs up to the latest checkpoint on disk. A run killed between writes
resumes from the latest checkpoint written and trains the epochs since then again;
training is deterministic given a checkpoint, so it ends with the same results.
"""

from __future__ import annotations

import time
from typing import Any, Callable

import jax
import numpy as np
import orbax.checkpoint as ocp

from autorec_jax.artifacts import checkpoint

# A best state bigger than this is written at once instead of held in host memory.
HOLD_MAX_BYTES = 1 << 30


class EpochCheckpoints:
  """Writes a run's checkpoints through `manager` by the policy above.

  Every process of a multi-host run must make the same calls: the time-based choice
  is process 0's, broadcast to the others.
  """

  def __init__(self, manager: ocp.CheckpointManager, *, every_secs: float,
               hold_max_bytes: int = HOLD_MAX_BYTES,
               clock: Callable[[], float] = time.monotonic):
    self.manager = manager
    self._every = float(every_secs)
    self._hold_max = hold_max_bytes
    self._clock = clock
    self._last_write: float | None = None  # none yet in this process: the next is due
    self._held: tuple | None = None  # (step, host state, shardings, meta, metrics)
    self.writes = 0  # checkpoints written by this object

  def epoch_end(self, step: int, state: Any, meta: dict, metrics: dict | None, *,
                improved: bool, last: bool) -> None:
    """An epoch ended at `step`: write it if due or `last`; else hold it when it is a
    new best (`improved`), dropping any older held best."""
    due = last or self._due()
    if improved:
      self._held = None  # superseded
      if not due and _nbytes(state) <= self._hold_max:
        self._held = (step, _host_copy(state), jax.tree.map(lambda x: x.sharding, state),
                      meta, metrics)
        return
      due = True
    if due:
      self.write(step, state, meta, metrics)

  def write(self, step: int, state: Any, meta: dict, metrics: dict | None) -> None:
    """Writes the held best, if any, then this checkpoint, each committed on return."""
    self.flush()
    checkpoint.save(self.manager, step, state, meta, metrics)
    self._wrote()

  def flush(self) -> None:
    """Writes the held best state, if any (before a restore, a stop or any write)."""
    if self._held is None:
      return
    step, host, shardings, meta, metrics = self._held
    self._held = None
    checkpoint.save(self.manager, step, jax.device_put(host, shardings), meta, metrics)
    self._wrote()

  def _wrote(self) -> None:
    self._last_write = self._clock()
    self.writes += 1

  def _due(self) -> bool:
    due = self._last_write is None or self._clock() - self._last_write >= self._every
    if jax.process_count() > 1:  # every process must save the same steps
      from jax.experimental import multihost_utils  # pylint: disable=import-outside-toplevel
      due = bool(multihost_utils.broadcast_one_to_all(np.asarray(due)))
    return due


def _nbytes(state: Any) -> int:
  return sum(int(x.nbytes) for x in jax.tree.leaves(state))


def _host_copy(state: Any) -> Any:
  """A host copy of `state` that stays valid when the device arrays are donated."""
  return jax.tree.map(lambda x: np.array(x, copy=True), jax.device_get(state))
