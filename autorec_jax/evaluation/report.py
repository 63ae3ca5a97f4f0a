r"""A report of trained runs: a markdown table and PNG plots, from their workdirs.

  python -m autorec_jax.evaluation.report runs/movielens_1m runs/movielens_1m_user --output=report

writes report/report.md (one table row per run: data, model, epochs, best epoch,
validation and test RMSE/MAE, NDCG@10 and Recall@10 when the run has them, time per
epoch, parameters) and two plots: report/valid_rmse.png (validation RMSE per epoch,
one line per run) and report/train_vs_valid.png (one panel per run: the train
loss as an RMSE on the rating scale next to the validation RMSE). Only files are read
(config.json, metrics.jsonl, results.json); nothing runs JAX. A run still training
(no results.json) gets its curves and a row marked "running". An --output folder that
holds a report already is written into only with --overwrite.

The train curve is sqrt(train/loss) times the run's scaling half-width: the RMSE of
the training pass on the rating scale, measured with dropout and noise on and
averaged over the epoch, so it is not the clean train RMSE and sits above it.
"""

from __future__ import annotations

import json
import math
import os
import sys
from typing import Any, Sequence

from absl import app, flags

from autorec_jax.artifacts.run_config import read_json
from autorec_jax.data.errors import DataFormatError
from autorec_jax.runtime import cli


def read_run(workdir: str) -> dict[str, Any]:
  """{"workdir", "name", "config", "metrics": [per-epoch rows], "results" or None}.

  FileNotFoundError when `workdir` is not a run's workdir; DataFormatError naming the
  file and line for a config.json or results.json that is not a JSON object, or a
  metrics.jsonl line that is not a JSON object with an integer epoch (only its last
  line may be cut short, by a run killed while writing it).
  """
  if not os.path.isdir(workdir):
    why = "it is a file" if os.path.exists(workdir) else "no such folder"
    raise FileNotFoundError(f"{workdir}: is not a run's workdir ({why})")
  path = os.path.join(workdir, "config.json")
  if not os.path.isfile(path):
    raise FileNotFoundError(f"{path} not found: {workdir} is not a run's workdir")
  config = read_json(path)
  if not isinstance(config, dict):
    raise DataFormatError(path, None, f"expected a JSON object, got {type(config).__name__}")
  rows = []
  path = os.path.join(workdir, "metrics.jsonl")
  if os.path.exists(path):
    with open(path, "rb") as f:
      lines = f.read().split(b"\n")
    last = max((i for i, l in enumerate(lines) if l.strip()), default=-1)
    for no, raw in enumerate(lines, start=1):
      if not raw.strip():
        continue
      try:
        row = json.loads(raw.decode("utf-8"))
      except (UnicodeDecodeError, json.JSONDecodeError):
        if no - 1 == last:
          break  # a line cut short by a killed run
        raise DataFormatError(path, no, "expected a JSON object per line, got a line that "
                              "is not JSON") from None
      if not isinstance(row, dict) or isinstance(row.get("epoch"), bool) or not isinstance(
          row.get("epoch"), int):
        raise DataFormatError(path, no, "expected a JSON object with an integer `epoch`, got "
                              f"{raw.decode('utf-8', 'replace')[:60]!r}")
      rows.append(row)
  results = None
  path = os.path.join(workdir, "results.json")
  if os.path.exists(path):
    results = read_json(path)
    if not isinstance(results, dict):
      raise DataFormatError(path, None, f"expected a JSON object, got "
                            f"{type(results).__name__}")
  name = os.path.basename(os.path.normpath(workdir))
  return {"workdir": workdir, "name": name, "config": config, "metrics": rows,
          "results": results}


def _unique_names(runs: list[dict]) -> None:
  """Runs with equal folder names are labelled by their paths instead."""
  names = [r["name"] for r in runs]
  for r in runs:
    if names.count(r["name"]) > 1:
      r["name"] = os.path.normpath(r["workdir"])


def series(run: dict, key: str) -> tuple[list[int], list[float]]:
  rows = [m for m in run["metrics"] if m.get(key) is not None]
  return [int(m["epoch"]) for m in rows], [float(m[key]) for m in rows]


def train_rmse_scale(config: dict) -> float:
  """Model units -> rating scale: the half-width of the scale when ratings were scaled."""
  if not config.get("preprocess", {}).get("scale", False):
    return 1.0
  data = config.get("data", {})
  lo, hi = data.get("rating_min"), data.get("rating_max")
  if lo is None or hi is None:
    from autorec_jax.data import datasets  # pylint: disable=import-outside-toplevel
    spec = datasets.REGISTRY.get(data.get("name"))
    if spec is None or spec.rating_scale is None:
      return float("nan")  # unknown scale (a csv without rating_min/max)
    lo, hi = spec.rating_scale
  return (float(hi) - float(lo)) / 2.0


def data_label(config: dict) -> str:
  """The data column: the data set's name, or for a generic reader (data.name=csv
  or monti) the base name of its data.path, as the run's own console line shows."""
  from autorec_jax.data import datasets  # pylint: disable=import-outside-toplevel
  data = config.get("data", {})
  name, path = data.get("name", "?"), data.get("path")
  return datasets.display_name(str(name), path if isinstance(path, str) else None)


def _fmt(value, digits: int = 4) -> str:
  if value is None or (isinstance(value, float) and not math.isfinite(value)):
    return "—"
  if isinstance(value, int):
    return f"{value:,}"
  return f"{value:.{digits}f}"


def _model_text(config: dict) -> str:
  m = config.get("model", {})
  widths = m.get("hidden_fractions") or m.get("hidden") or ()
  text = (f"{m.get('orientation', '?')}-based {'-'.join(str(w) for w in widths)} "
          f"{m.get('activation', '')}")
  if m.get("dropout"):
    text += f", dropout {m['dropout']:g}"
  if config.get("train", {}).get("refeed_steps"):
    text += f", re-feed {config['train']['refeed_steps']}"
  return text


def markdown(runs: Sequence[dict]) -> str:
  """The runs as one markdown table."""
  header = ["run", "data", "model", "epochs", "best epoch", "valid RMSE", "test RMSE",
            "test MAE", "NDCG@10", "Recall@10", "s/epoch", "params"]
  lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
  for run in runs:
    res = run["results"] or {}
    epochs, valid = series(run, "valid/rmse")
    finite = [(v, e) for e, v in zip(epochs, valid) if math.isfinite(v)]
    best = res.get("best_epoch", min(finite)[1] if finite else None)
    cells = [
        run["name"], data_label(run["config"]),
        _model_text(run["config"]),
        _fmt(res.get("epochs_run", len(run["metrics"]))) + ("" if run["results"]
                                                            else " (running)"),
        _fmt(best), _fmt(res.get("valid/rmse", min(finite)[0] if finite else None)),
        _fmt(res.get("test/rmse")), _fmt(res.get("test/mae")),
        _fmt(res.get("test/ndcg@10")), _fmt(res.get("test/recall@10")),
        _fmt(res.get("seconds_per_epoch"), 2), _fmt(res.get("num_params"))]
    lines.append("| " + " | ".join(str(c).replace("|", "\\|") for c in cells) + " |")
  return "\n".join(lines) + "\n"


def plot_valid_rmse(runs: Sequence[dict], path) -> None:
  """Validation RMSE per epoch, one line per run, best epoch marked; a PNG written to
  `path` (a file name or a binary file)."""
  plt = _pyplot()
  fig, ax = plt.subplots(figsize=(7, 4.5))
  for run in runs:
    x, y = series(run, "valid/rmse")
    if not x:
      continue
    (line,) = ax.plot(x, y, label=run["name"], linewidth=1.4)
    v, e = min((v, e) for e, v in zip(x, y))
    ax.plot([e], [v], marker="o", markersize=4, color=line.get_color())
  ax.set_xlabel("epoch")
  ax.set_ylabel("validation RMSE")
  ax.set_title("Validation RMSE per epoch")
  ax.grid(True, alpha=0.3)
  if ax.lines:
    ax.legend(fontsize=8)
  fig.tight_layout()
  fig.savefig(path, dpi=110, format="png")
  plt.close(fig)


def plot_train_vs_valid(runs: Sequence[dict], path) -> None:
  """One panel per run: train-pass RMSE (from train/loss) and validation RMSE; a PNG
  written to `path` (a file name or a binary file)."""
  plt = _pyplot()
  cols = min(3, max(1, len(runs)))
  rows = math.ceil(len(runs) / cols)
  fig, axes = plt.subplots(rows, cols, figsize=(5 * cols, 3.6 * rows), squeeze=False)
  for ax in axes.flat[len(runs):]:
    ax.axis("off")
  for ax, run in zip(axes.flat, runs):
    scale = train_rmse_scale(run["config"])
    x, loss = series(run, "train/loss")
    if x:
      units = "rating scale" if math.isfinite(scale) else "model units"
      factor = scale if math.isfinite(scale) else 1.0
      ax.plot(x, [math.sqrt(max(v, 0.0)) * factor for v in loss],
              label=f"train √loss ({units})", linewidth=1.4)
    x, valid = series(run, "valid/rmse")
    if x:
      ax.plot(x, valid, label="validation RMSE", linewidth=1.4)
    ax.set_title(run["name"], fontsize=10)
    ax.set_xlabel("epoch")
    ax.set_ylabel("RMSE")
    ax.grid(True, alpha=0.3)
    if ax.lines:
      ax.legend(fontsize=8)
  fig.suptitle("Train vs validation", fontsize=12)
  fig.tight_layout()
  fig.savefig(path, dpi=110, format="png")
  plt.close(fig)


def _pyplot():
  import matplotlib  # pylint: disable=import-outside-toplevel
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # pylint: disable=import-outside-toplevel
  return plt


REPORT_FILES = ("report.md", "valid_rmse.png", "train_vs_valid.png")


def write_report(workdirs: Sequence[str], output: str, *, overwrite: bool = False
                 ) -> list[str]:
  """Writes report.md and the two PNGs under `output`; returns their paths.

  A folder that holds one of them already is refused (FileExistsError) unless
  `overwrite`; each file is written under a temporary name and renamed into place.
  """
  runs = [read_run(w) for w in workdirs]
  _unique_names(runs)
  cli.check_output_dir(output, REPORT_FILES, overwrite=overwrite)
  md_path, valid_png, tv_png = (os.path.join(output, name) for name in REPORT_FILES)
  with cli.atomic_output(valid_png, "wb") as f:
    plot_valid_rmse(runs, f)
  with cli.atomic_output(tv_png, "wb") as f:
    plot_train_vs_valid(runs, f)
  text = ("# Runs\n\n" + markdown(runs) +
          "\n![validation RMSE per epoch](valid_rmse.png)\n\n"
          "![train vs validation](train_vs_valid.png)\n\n"
          "Train curve: sqrt(train/loss) on the rating scale, measured on the training "
          "pass (dropout and noise on, averaged over the epoch).\n")
  with cli.atomic_output(md_path, encoding="utf-8") as f:
    f.write(text)
  return [md_path, valid_png, tv_png]


FLAGS = flags.FlagValues()
_OUTPUT = flags.DEFINE_string("output", "report", "Directory for report.md and the PNGs.",
                              flag_values=FLAGS)
_OVERWRITE = flags.DEFINE_bool("overwrite", False, "Replace the report.md and PNGs an "
                               "earlier report left in --output.", flag_values=FLAGS)


@cli.one_line_errors
def main(argv):
  workdirs = argv[1:]
  if not workdirs:
    print("usage: python -m autorec_jax.evaluation.report RUN_DIR [RUN_DIR ...] "
          "[--output=DIR] [--overwrite]", file=sys.stderr)
    return 2
  cli.check_output_dir(_OUTPUT.value, REPORT_FILES, overwrite=_OVERWRITE.value)
  paths = write_report(workdirs, _OUTPUT.value, overwrite=_OVERWRITE.value)
  print("wrote " + ", ".join(paths))
  return 0


if __name__ == "__main__":
  app.run(main, flags_parser=cli.parser(FLAGS))
