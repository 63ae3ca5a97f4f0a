"""The search's wall-time budget: parsing `--budget` and the deadline it sets.

A budget is written as numbers with units, `90s`, `10m`, `1h`, `1h30m` or `2.5m`;
a bare number is refused (seconds or minutes?). `Budget` holds the seconds left to a
search when it (re)starts and answers, against a clock, whether they are spent.
"""

from __future__ import annotations

import dataclasses
import math
import re
import time
from typing import Callable

_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0}
_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)([smh])")


def parse_duration(text: str, flag: str = "--budget") -> float:
  """Seconds in a duration such as `90s`, `10m`, `1h`, `1h30m` or `2.5m` (> 0).

  ValueError with one line saying what is expected otherwise.
  """
  raw = str(text).strip().lower().replace(" ", "")
  expected = "expected a duration such as 90s, 10m, 1h or 1h30m"
  if not raw:
    raise ValueError(f"{flag} is empty; {expected}")
  pos, seconds = 0, 0.0
  for match in _PART.finditer(raw):
    if match.start() != pos:
      break
    seconds += float(match.group(1)) * _UNITS[match.group(2)]
    pos = match.end()
  if pos != len(raw):
    if re.fullmatch(r"[\d.]+", raw):
      raise ValueError(f"{flag}={text}: give a unit (s, m or h); {expected}")
    raise ValueError(f"{flag}={text}: {expected}")
  if not math.isfinite(seconds) or seconds <= 0:
    raise ValueError(f"{flag}={text} must be longer than 0 seconds")
  return seconds


def format_duration(seconds: float) -> str:
  """`95.0` -> `1m35s`; `30.2` -> `30s` (whole seconds)."""
  seconds = int(round(max(seconds, 0.0)))
  h, rest = divmod(seconds, 3600)
  m, s = divmod(rest, 60)
  parts = [f"{h}h" if h else "", f"{m}m" if m else "", f"{s}s" if s or not (h or m) else ""]
  return "".join(parts)


@dataclasses.dataclass
class Budget:
  """The seconds a search may still use, counted from `start()` on `clock`.

  `total` is the whole budget (None: no time limit); `spent_before` what earlier
  runs of the tuner on the same study used, so a continued study gets what is left.
  """

  total: float | None
  spent_before: float = 0.0
  clock: Callable[[], float] = time.monotonic
  _started: float | None = None

  def start(self) -> None:
    self._started = self.clock()

  def elapsed(self) -> float:
    """Seconds since `start()` (in this run of the tuner)."""
    return 0.0 if self._started is None else self.clock() - self._started

  def left(self) -> float:
    """Seconds left (infinity without a limit; negative once overspent)."""
    if self.total is None:
      return math.inf
    return self.total - self.spent_before - self.elapsed()

  def spent(self) -> bool:
    return self.left() <= 0
