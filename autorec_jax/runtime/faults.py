"""Fault injection for crash-safety tests: kill this process at a named point.

`AUTOREC_FAULT=point:n` (e.g. `checkpoint_save:2`) sends SIGKILL to the process the
n-th time the training loop reaches `point`: `train_step` (after a step is
dispatched), `checkpoint_save` (while a save is in flight, before it is committed)
or `eval` (during a validation pass). `point:n:enospc` raises the OSError of a full
disk there instead. Unset, `reached` does nothing. It exists so the tests can fail a
run at an exact moment; it is not a user feature.
"""

from __future__ import annotations

import errno
import os
import signal

POINTS = ("train_step", "checkpoint_save", "eval")
_counts: dict[str, int] = {}


def reached(point: str) -> None:
  spec = os.environ.get("AUTOREC_FAULT")
  if not spec:
    return
  name, _, rest = spec.partition(":")
  count, _, action = rest.partition(":")
  if name != point:
    return
  _counts[point] = _counts.get(point, 0) + 1
  if _counts[point] == int(count or 1):
    if action == "enospc":
      raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    os.kill(os.getpid(), signal.SIGKILL)
