"""Reading finished runs back and turning them into markdown tables and PNG plots.

Shared by the sweep scripts in `experiments/`: a run is a workdir written by
`python -m autorec_jax.main` (metrics.jsonl, one JSON object per epoch, and
results.json once the run has finished). Nothing here runs JAX; plotting needs
matplotlib (the `experiments` extra), imported only when a plot is drawn.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import statistics
from typing import Sequence


@dataclasses.dataclass
class Run:
  """What a workdir holds: per-epoch metrics, the final results, a recorded error."""

  workdir: str
  metrics: list[dict]
  results: dict | None
  error: str | None

  @property
  def finished(self) -> bool:
    return self.results is not None

  def series(self, key: str) -> tuple[list[int], list[float]]:
    """(epochs, values) of one metric, skipping epochs that lack it."""
    rows = [r for r in self.metrics if key in r and r[key] is not None]
    return [int(r["epoch"]) for r in rows], [float(r[key]) for r in rows]

  def best_valid(self) -> tuple[int, float] | None:
    """(epoch, RMSE) of the lowest finite validation RMSE seen, or None."""
    epochs, values = self.series("valid/rmse")
    finite = [(v, e) for e, v in zip(epochs, values) if math.isfinite(v)]
    if not finite:
      return None
    value, epoch = min(finite)
    return epoch, value

  def seconds_per_epoch(self) -> float | None:
    if self.results is not None:
      return float(self.results["seconds_per_epoch"])
    _, secs = self.series("perf/epoch_secs")
    return statistics.median(secs) if secs else None


ERROR_FILE = "sweep_error.txt"


def read_run(workdir: str) -> Run:
  """Loads a workdir; a missing or half-written run gives empty metrics / no results."""
  metrics: list[dict] = []
  path = os.path.join(workdir, "metrics.jsonl")
  if os.path.exists(path):
    with open(path, encoding="utf-8") as f:
      for line in f:
        line = line.strip()
        if line:
          try:
            metrics.append(json.loads(line))
          except json.JSONDecodeError:
            break  # a line cut short by a killed run: keep what came before
  results = None
  path = os.path.join(workdir, "results.json")
  if os.path.exists(path):
    with open(path, encoding="utf-8") as f:
      results = json.load(f)
  error = None
  path = os.path.join(workdir, ERROR_FILE)
  if results is None and os.path.exists(path):
    with open(path, encoding="utf-8") as f:
      error = f.read().strip() or "failed"
  return Run(workdir, metrics, results, error)


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
  """A GitHub markdown table; `|` and newlines inside cells are escaped."""
  def cell(text) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")
  lines = ["| " + " | ".join(cell(h) for h in header) + " |",
           "|" + "|".join("---" for _ in header) + "|"]
  for row in rows:
    if len(row) != len(header):
      raise ValueError(f"row has {len(row)} cells, header has {len(header)}: {row}")
    lines.append("| " + " | ".join(cell(c) for c in row) + " |")
  return "\n".join(lines) + "\n"


def fmt(value, digits: int = 4) -> str:
  """A number for a table cell; None and NaN become an em dash."""
  if value is None or (isinstance(value, float) and not math.isfinite(value)):
    return "—"
  if isinstance(value, int):
    return f"{value:,}"
  return f"{value:.{digits}f}"


@dataclasses.dataclass
class Line:
  """One curve: a label, x and y values, and whether to mark its minimum."""

  label: str
  x: Sequence[float]
  y: Sequence[float]
  color: str | None = None
  mark_min: bool = False


@dataclasses.dataclass
class Panel:
  """One axes: title, axis labels, curves, and an optional cap on the y span.

  `max_span` keeps a diverging curve from flattening the others: the y axis runs
  from just under the lowest value to `max_span` above it, or higher where needed to
  show every curve's lowest value (never past the highest value).
  """

  title: str
  ylabel: str
  lines: list[Line]
  xlabel: str = "epoch"
  max_span: float | None = None


def plot_grid(path: str, grid: Sequence[Sequence[Panel]], title: str) -> None:
  """Draws a rows x columns grid of panels to a PNG at `path`."""
  import matplotlib  # pylint: disable=import-outside-toplevel
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # pylint: disable=import-outside-toplevel

  nrows, ncols = len(grid), max(len(r) for r in grid)
  fig, axes = plt.subplots(nrows, ncols, figsize=(5.2 * ncols, 3.9 * nrows), squeeze=False)
  for i, row in enumerate(grid):
    for j in range(ncols):
      ax = axes[i][j]
      if j >= len(row):
        ax.axis("off")
        continue
      _draw_panel(ax, row[j])
  fig.suptitle(title, fontsize=12)
  fig.tight_layout()
  fig.savefig(path, dpi=110)
  plt.close(fig)


def _draw_panel(ax, panel: Panel) -> None:
  from matplotlib import ticker  # pylint: disable=import-outside-toplevel

  finite = [v for line in panel.lines for v in line.y if math.isfinite(v)]
  for line in panel.lines:
    (drawn,) = ax.plot(line.x, line.y, label=line.label, color=line.color, linewidth=1.4)
    pairs = [(v, x) for x, v in zip(line.x, line.y) if math.isfinite(v)]
    if line.mark_min and pairs:
      v, x = min(pairs)
      ax.plot([x], [v], marker="o", markersize=4, color=drawn.get_color())
  if finite:
    lo, hi = min(finite), max(finite)
    if panel.max_span is not None:
      # Show every curve's best value, and at least max_span above the lowest.
      bests = [min(v for v in line.y if math.isfinite(v)) for line in panel.lines
               if any(math.isfinite(v) for v in line.y)]
      worst_best = max(bests)
      hi = min(hi, max(lo + panel.max_span, worst_best + 0.15 * (worst_best - lo)))
    pad = max(hi - lo, 1e-3) * 0.05
    ax.set_ylim(lo - pad, hi + pad)
  ax.xaxis.set_major_locator(ticker.MaxNLocator(integer=True))
  ax.set_title(panel.title, fontsize=10)
  ax.set_xlabel(panel.xlabel)
  ax.set_ylabel(panel.ylabel)
  ax.grid(True, alpha=0.3)
  if panel.lines:
    ax.legend(fontsize=8)
