"""SIGTERM/SIGINT as a flag a loop checks between steps, and the error it ends with."""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading


class Interrupted(Exception):
  """SIGTERM/SIGINT stopped training after saving a checkpoint; rerun to resume."""

  def __init__(self, signum: int, epoch: int, batch: int):
    self.signum = signum
    super().__init__(
        f"stopped by {signal.Signals(signum).name} after {epoch} epochs and {batch} batches "
        "of the next; a checkpoint was saved: run the same command to resume")


class StopSignal:
  """Turns SIGTERM/SIGINT into a flag the loop checks after each step."""

  def __init__(self):
    self.signum: int | None = None

  def _handle(self, signum, frame):
    del frame
    self.signum = signum

  @contextlib.contextmanager
  def installed(self):
    if threading.current_thread() is not threading.main_thread():
      yield self
      return
    previous = {s: signal.signal(s, self._handle) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
      yield self
    finally:
      for s, handler in previous.items():
        signal.signal(s, handler)


def exit_at_once_on_signals(hint: str) -> None:
  """Until a training loop installs its own handlers (which save a checkpoint
  first): SIGINT and SIGTERM print `interrupted: stopped by SIGINT; <hint>` and exit
  at once with 128 + the signal. Files are replaced atomically, so nothing
  half-written is kept. Light to import: a CLI calls it before its slow imports."""

  def stop(signum, frame):
    del frame
    print(f"interrupted: stopped by {signal.Signals(signum).name}; {hint}", file=sys.stderr)
    sys.stderr.flush()
    os._exit(128 + signum)  # pylint: disable=protected-access

  for signum in (signal.SIGINT, signal.SIGTERM):
    signal.signal(signum, stop)
