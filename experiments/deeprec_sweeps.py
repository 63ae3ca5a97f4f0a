r"""The DeepRec paper's experiments (Kuchaiev & Ginsburg 2017) as sweeps of overrides.

  python experiments/deeprec_sweeps.py --sweep=activations
  python experiments/deeprec_sweeps.py --sweep=all --epochs=20 --dry-run
  python experiments/deeprec_sweeps.py --sweep=activations,depth --points='user_*'
  python experiments/deeprec_sweeps.py --sweep=all --report-only
  python experiments/deeprec_sweeps.py --sweep=refeed \
      --dataset-config=configs/netflix_full.py --config.data.path=/data/netflix_full \
      --results-dir=experiments/results/netflix_full --epochs=100

Each point of a sweep is one run of `python -m autorec_jax.main` in a subprocess, with
`--config.*` overrides (configs are never edited) and a workdir of its own,
RUNS_DIR/<dataset tag>/<sweep>/<point>. A point whose workdir already holds
results.json for at least the requested epochs is skipped, and an unfinished one
resumes from its latest checkpoint, so rerunning a sweep picks up where it stopped.
After the runs, RESULTS_DIR/<sweep>.md holds the table (point, overrides, best
validation RMSE, test RMSE of the best-by-validation checkpoint, best epoch, seconds
per epoch, parameters, the exact command) and RESULTS_DIR/<sweep>.png the validation
RMSE per epoch of every point (and the training RMSE, sqrt of train/loss, where the
paper's figure shows it). Arguments of the form `--config.FIELD=VALUE` are passed on
to every point (e.g. `--config.data.path`) and win over the sweep's shared settings
(one that a sweep varies is refused). `--points` runs a subset (globs on point names), `--report-only` rebuilds
the tables and plots from the workdirs, `--dry-run` prints the commands.

Sweeps (paper section; ML-1M adaptations are stated in each table's header):
  activations  figure 2: selu/elu/lrelu/sigmoid/relu/relu6/tanh on hidden (128,128),
               user- and item-based.
  depth        table 2: 1..6 encoder layers of 128 (2..12 layers in all), both
               orientations.
  width        figure 3: one hidden layer of 128/256/512/1024; train and valid RMSE.
  dropout      figure 4: (512,512,1024) with code dropout 0.0/0.5/0.65/0.8.
  refeed       figure 5: (512,512,1024) dp 0.8, SGD momentum 0.9, lr 0.001/0.005,
               without and with one dense re-feeding step.
  tied         section 3.3: unconstrained vs constrained decoder for a layer of 512
               and for (512,512,1024) dp 0.8.
"""

from __future__ import annotations

import argparse
import dataclasses
import fnmatch
import os
import shlex
import subprocess
import sys
import time
from typing import Callable, Sequence

if __package__ in (None, ""):  # run as `python experiments/deeprec_sweeps.py`
  sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from experiments import report  # pylint: disable=wrong-import-position

DEFAULT_DATASET_CONFIG = "configs/movielens_1m.py:user"
DEFAULT_RUNS_DIR = "runs/sweeps"
DEFAULT_RESULTS_DIR = "experiments/results"

# Every point of every sweep sets these, so a sweep does not inherit a data-set
# config's tuned choices (weight decay, decaying schedule, dropout): the paper's
# plain setting of batch 128, xavier init, SELU on every layer, constant lr, no L2.
COMMON = {
    "train.progress_bar": "False",
    "train.batch_size": "128",
    "train.eval_every_epochs": "1",
    "train.refeed_steps": "0",
    "model.orientation": "user",
    "model.activation": "selu",
    "model.output_activation": "True",
    "model.dropout": "0.0",
    "model.tied": "False",
    "model.kernel_init": "xavier",
    "optim.schedule": "constant",
    "optim.weight_decay": "0.0",
    "eval.ranking_ks": "()",  # RMSE is what these sweeps compare; skip top-k each epoch
}
ADAM = {"optim.name": "adam", "optim.learning_rate": "0.001"}
PAPER_SGD = {"optim.name": "sgd", "optim.momentum": "0.9", "optim.nesterov": "False"}

_ADAM_NOTE = (
    "Optimizer: Adam, lr 1e-3, instead of the paper's SGD with momentum 0.9 at lr 0.001: "
    "ML-1M has 6,040 users, i.e. 47 steps of 128 per epoch (Netflix Full: ~3,700), and "
    "SGD at that rate barely moves in the epochs a CPU run affords.")


@dataclasses.dataclass(frozen=True)
class Point:
  """One run of a sweep: its workdir name, plot group and legend label, overrides."""

  name: str
  group: str
  series: str
  overrides: dict[str, str]


@dataclasses.dataclass(frozen=True)
class Sweep:
  """A paper experiment: shared overrides, its points, default epochs, how to plot."""

  name: str
  title: str
  paper: str
  notes: str
  base: dict[str, str]
  points: tuple[Point, ...]
  epochs: int
  train_panel: bool = False


def _hidden(widths: Sequence[int]) -> str:
  return "(" + ",".join(str(w) for w in widths) + ("," if len(widths) == 1 else "") + ")"


def _activations() -> Sweep:
  points = []
  for orientation in ("user", "item"):
    for act in ("selu", "elu", "lrelu", "sigmoid", "relu", "relu6", "tanh"):
      points.append(Point(f"{orientation}_{act}", orientation, act, {
          "model.orientation": orientation, "model.activation": act,
          "model.output_activation": str(act not in ("sigmoid", "tanh"))}))
  return Sweep(
      "activations", "Activation functions (DeepRec figure 2)",
      "Paper: 4-layer autoencoder, hidden (128,128), user-based, training RMSE per "
      "mini-batch on Netflix; ELU, SELU and LReLU beat sigmoid, ReLU, ReLU6 and tanh.",
      _ADAM_NOTE + " Output layer linear for sigmoid and tanh (ratings are 1..5), "
      "activated for the others, as the paper. Both orientations.",
      {**COMMON, **ADAM, "model.hidden": _hidden((128, 128))}, tuple(points), epochs=30,
      train_panel=True)


def _depth() -> Sweep:
  points = []
  for orientation in ("user", "item"):
    for depth in range(1, 7):
      points.append(Point(f"{orientation}_{2 * depth}layers", orientation,
                          f"{2 * depth} layers", {
                              "model.orientation": orientation,
                              "model.hidden": _hidden((128,) * depth)}))
  return Sweep(
      "depth", "Depth (DeepRec table 2)",
      "Paper: hidden layers of 128, 2 to 12 layers in all, SELU; evaluation RMSE falls "
      "from 1.146 (2 layers) to 0.9378 (6) and 0.9328 (12) on Netflix Full.",
      _ADAM_NOTE + " Both orientations.",
      {**COMMON, **ADAM}, tuple(points), epochs=20)


def _width() -> Sweep:
  points = tuple(Point(f"h{w}", "", f"{w} units", {"model.hidden": _hidden((w,))})
                 for w in (128, 256, 512, 1024))
  return Sweep(
      "width", "Width and over-fitting (DeepRec figure 3)",
      "Paper: one hidden layer of 128/256/512/1024 units, SELU; wider layers bring the "
      "training RMSE down but over-fit (evaluation RMSE above 1.0 for 256).",
      _ADAM_NOTE + " No dropout, no weight decay.",
      {**COMMON, **ADAM}, points, epochs=20, train_panel=True)


def _dropout() -> Sweep:
  points = tuple(Point(f"dp{p}", "", f"drop {p}", {"model.dropout": str(p)})
                 for p in (0.0, 0.5, 0.65, 0.8))
  return Sweep(
      "dropout", "Dropout on the code (DeepRec figure 4)",
      "Paper: n,512,512,1024,dp,512,512,n, SELU; drop probability 0.0 and 0.5 over-fit, "
      "0.65 and 0.8 reach 0.9192 and 0.9183 on Netflix Full.",
      _ADAM_NOTE,
      {**COMMON, **ADAM, "model.hidden": _hidden((512, 512, 1024))}, points, epochs=30,
      train_panel=True)


def _refeed() -> Sweep:
  points = []
  for lr in ("0.001", "0.005"):
    for refeed in (0, 1):
      points.append(Point(f"lr{lr}" + ("_rf" if refeed else ""), "",
                          f"lr {lr}" + (" + re-feeding" if refeed else ""),
                          {"optim.learning_rate": lr, "train.refeed_steps": str(refeed)}))
  return Sweep(
      "refeed", "Dense re-feeding (DeepRec figure 5)",
      "Paper: n,512,512,1024,dp(0.8),512,512,n, SGD momentum 0.9; re-feeding alone "
      "(lr 0.001) hardly helps, lr 0.005 alone diverges, lr 0.005 with re-feeding "
      "improves evaluation RMSE from 0.9167 to 0.9100 on Netflix Full.",
      "Optimizer: the paper's SGD with momentum 0.9 (this sweep is about its learning "
      "rate), constant lr, batch 128; on ML-1M that is only 47 steps per epoch, so the "
      "lr 0.001 runs are far from converged in the epochs run here.",
      {**COMMON, **PAPER_SGD, "model.hidden": _hidden((512, 512, 1024)),
       "model.dropout": "0.8"}, tuple(points), epochs=30, train_panel=True)


def _tied() -> Sweep:
  points = []
  for arch, widths, dropout in (("h512", (512,), "0.0"),
                                ("h512-512-1024_dp0.8", (512, 512, 1024), "0.8")):
    label = f"hidden {_hidden(widths)}" + (f", dp {dropout}" if dropout != "0.0" else "")
    for tied in (False, True):
      points.append(Point(f"{arch}_{'tied' if tied else 'free'}", label,
                          "constrained" if tied else "unconstrained",
                          {"model.hidden": _hidden(widths), "model.dropout": dropout,
                           "model.tied": str(tied)}))
  return Sweep(
      "tied", "Constrained (tied) decoder (DeepRec section 3.3)",
      "Paper: switching a single-layer autoencoder from unconstrained to constrained "
      "reduces over-fitting but does not remove it.",
      _ADAM_NOTE, {**COMMON, **ADAM}, tuple(points), epochs=25, train_panel=True)


SWEEPS: dict[str, Sweep] = {s.name: s for s in (
    _activations(), _depth(), _width(), _dropout(), _refeed(), _tied())}


def dataset_tag(dataset_config: str) -> str:
  """`configs/movielens_1m.py:user` -> `movielens_1m_user` (a runs-dir folder name)."""
  path, _, variant = dataset_config.partition(":")
  stem = os.path.splitext(os.path.basename(path))[0]
  return f"{stem}_{variant}" if variant else stem


def point_workdir(sweep: Sweep, point: Point, runs_dir: str, dataset_config: str) -> str:
  return os.path.join(runs_dir, dataset_tag(dataset_config), sweep.name, point.name)


def point_overrides(sweep: Sweep, point: Point, epochs: int,
                    extra: dict[str, str] | None = None) -> dict[str, str]:
  """The merged overrides of a point: sweep base, epochs (all of them: the plots show
  every epoch, so no early stopping), the point's own, then extra."""
  return {**sweep.base, "train.num_epochs": str(epochs), "train.patience": "0",
          **point.overrides, **(extra or {})}


def point_command(sweep: Sweep, point: Point, *, dataset_config: str, runs_dir: str,
                  epochs: int, extra: dict[str, str] | None = None,
                  python: str = "python") -> list[str]:
  """The argv that trains one point."""
  workdir = point_workdir(sweep, point, runs_dir, dataset_config)
  return [python, "-m", "autorec_jax.main", f"--config={dataset_config}",
          f"--workdir={workdir}"] + [
              f"--config.{k}={v}"
              for k, v in point_overrides(sweep, point, epochs, extra).items()]


def is_done(workdir: str, epochs: int) -> bool:
  """Whether the workdir holds a finished run of at least `epochs` epochs."""
  run = report.read_run(workdir)
  return run.finished and int(run.results.get("epochs_run", 0)) >= epochs


def _subprocess_runner(argv: list[str], workdir: str) -> tuple[int, str]:
  """Runs one point, its output appended to WORKDIR/sweep.log; (exit code, last error)."""
  os.makedirs(workdir, exist_ok=True)
  log_path = os.path.join(workdir, "sweep.log")
  with open(log_path, "a", encoding="utf-8") as log:
    log.write(f"$ {shlex.join(argv)}\n")
    log.flush()
    rc = subprocess.run(argv, stdout=log, stderr=subprocess.STDOUT, check=False).returncode
  message = ""
  if rc != 0:
    with open(log_path, encoding="utf-8", errors="replace") as f:
      lines = [l.strip() for l in f if l.strip()]
    errors = [l for l in lines if l.startswith("error:")]
    message = (errors or lines or [f"exit code {rc}"])[-1]
  return rc, message


Runner = Callable[[list[str], str], tuple[int, str]]


def select_points(sweep: Sweep, patterns: str = "*") -> list[Point]:
  """The sweep's points whose names match one of the comma-separated globs."""
  globs = [g.strip() for g in patterns.split(",") if g.strip()]
  return [p for p in sweep.points if any(fnmatch.fnmatchcase(p.name, g) for g in globs)]


def run_sweep(sweep: Sweep, *, dataset_config: str, runs_dir: str, epochs: int,
              extra: dict[str, str] | None = None, runner: Runner = _subprocess_runner,
              points: str = "*", out=None) -> list[str]:
  """Runs the selected points one after another (skipping finished ones); returns the
  names of those that failed."""
  out = out or sys.stdout
  failed = []
  selected = select_points(sweep, points)
  for i, point in enumerate(selected, 1):
    workdir = point_workdir(sweep, point, runs_dir, dataset_config)
    prefix = f"[{sweep.name} {i}/{len(selected)}] {point.name}:"
    if is_done(workdir, epochs):
      print(f"{prefix} done already", file=out, flush=True)
      continue
    argv = point_command(sweep, point, dataset_config=dataset_config, runs_dir=runs_dir,
                         epochs=epochs, extra=extra, python=sys.executable)
    t0 = time.perf_counter()
    rc, message = runner(argv, workdir)
    error_path = os.path.join(workdir, report.ERROR_FILE)
    if rc != 0:
      failed.append(point.name)
      os.makedirs(workdir, exist_ok=True)
      with open(error_path, "w", encoding="utf-8") as f:
        f.write(message + "\n")
      print(f"{prefix} FAILED ({message})", file=out, flush=True)
      continue
    if os.path.exists(error_path):
      os.remove(error_path)
    run = report.read_run(workdir)
    test = run.results["test/rmse"] if run.finished else float("nan")
    print(f"{prefix} test RMSE {test:.4f} ({time.perf_counter() - t0:.0f} s)", file=out,
          flush=True)
  return failed


def _shell(argv: Sequence[str]) -> str:
  return shlex.join(argv)


def sweep_command(sweep: Sweep, *, dataset_config: str = DEFAULT_DATASET_CONFIG,
                  runs_dir: str = DEFAULT_RUNS_DIR, results_dir: str = DEFAULT_RESULTS_DIR,
                  epochs: int | None = None, extra: dict[str, str] | None = None) -> str:
  """The shell command that runs (or resumes) a whole sweep; defaults are left out."""
  argv = ["python", "experiments/deeprec_sweeps.py", f"--sweep={sweep.name}"]
  for flag, value, default in (("--dataset-config", dataset_config, DEFAULT_DATASET_CONFIG),
                               ("--runs-dir", runs_dir, DEFAULT_RUNS_DIR),
                               ("--results-dir", results_dir, DEFAULT_RESULTS_DIR)):
    if value != default:
      argv.append(f"{flag}={value}")
  if epochs is not None and epochs != sweep.epochs:
    argv.append(f"--epochs={epochs}")
  argv += [f"--config.{k}={v}" for k, v in (extra or {}).items()]
  return _shell(argv)


def _overrides_cell(point: Point) -> str:
  return " ".join(f"{k}={v}" for k, v in point.overrides.items())


def build_table(sweep: Sweep, *, dataset_config: str, runs_dir: str, epochs: int,
                extra: dict[str, str] | None = None,
                results_dir: str = DEFAULT_RESULTS_DIR) -> str:
  """The sweep's markdown: a header stating the setting and deviations, then the table."""
  rows = []
  for point in sweep.points:
    workdir = point_workdir(sweep, point, runs_dir, dataset_config)
    run = report.read_run(workdir)
    best = run.best_valid()
    if run.finished:
      valid, test = run.results["valid/rmse"], report.fmt(run.results["test/rmse"])
      best_epoch = f"{run.results['best_epoch']} / {run.results['epochs_run']}"
      params = report.fmt(int(run.results["num_params"]))
    else:
      valid = best[1] if best else None
      test = f"failed: {run.error}" if run.error else "not run"
      best_epoch = (f"{best[0]} / {len(run.metrics)}" if best else "—")
      params = "—"
    rows.append([point.name, f"`{_overrides_cell(point)}`", report.fmt(valid), test,
                 best_epoch, report.fmt(run.seconds_per_epoch(), 2), params,
                 "`" + _shell(point_command(sweep, point, dataset_config=dataset_config,
                                            runs_dir=runs_dir, epochs=epochs,
                                            extra=extra)) + "`"])
  base = " ".join(f"{k}={v}" for k, v in sweep.base.items())
  extra_text = (" Extra overrides: `" + " ".join(f"{k}={v}" for k, v in extra.items())
                + "`.") if extra else ""
  whole = sweep_command(sweep, dataset_config=dataset_config, runs_dir=runs_dir,
                        results_dir=results_dir, epochs=epochs, extra=extra)
  header = (
      f"# {sweep.title} on {dataset_tag(dataset_config)}\n\n"
      f"{sweep.paper}\n\n"
      f"Here: `--config={dataset_config}`, {epochs} epochs per point. {sweep.notes}"
      f"{extra_text}\n\n"
      f"Shared settings (a point's own overrides win): `{base}`.\n\n"
      "Best valid RMSE: the lowest validation RMSE over the epochs; test RMSE: the "
      "checkpoint with that validation RMSE on the held-out test ratings; best epoch: "
      "that epoch / epochs run. The whole sweep (finished points are skipped): "
      f"`{whole}`.\n\n")
  columns = ["point", "overrides", "best valid RMSE", "test RMSE", "best epoch", "s/epoch",
             "params", "command"]
  return header + report.markdown_table(columns, rows)


_COLORS = ("tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple", "tab:brown",
           "tab:pink", "tab:gray", "tab:olive", "tab:cyan")


def build_plot(sweep: Sweep, path: str, *, dataset_config: str, runs_dir: str) -> None:
  """Validation RMSE per epoch (and training RMSE where the sweep asks), one column
  per group of points (e.g. user- and item-based)."""
  series = list(dict.fromkeys(p.series for p in sweep.points))
  colors = {s: _COLORS[i % len(_COLORS)] for i, s in enumerate(series)}
  groups = list(dict.fromkeys(p.group for p in sweep.points))
  valid_row, train_row = [], []
  for group in groups:
    valid_lines, train_lines = [], []
    for point in (p for p in sweep.points if p.group == group):
      run = report.read_run(point_workdir(sweep, point, runs_dir, dataset_config))
      x, y = run.series("valid/rmse")
      valid_lines.append(report.Line(point.series, x, y, colors[point.series],
                                     mark_min=True))
      x, loss = run.series("train/loss")
      train_lines.append(report.Line(point.series, x, [v ** 0.5 for v in loss],
                                     colors[point.series]))
    suffix = f", {group}" if group else ""
    valid_row.append(report.Panel(f"validation RMSE{suffix}", "RMSE", valid_lines,
                                  max_span=0.3))
    train_row.append(report.Panel(f"training RMSE = sqrt(train/loss){suffix}", "RMSE",
                                  train_lines, max_span=0.6))
  if not sweep.train_panel:
    grid = [valid_row]
  elif len(groups) == 1:
    grid = [[train_row[0], valid_row[0]]]  # side by side, as figure 3 A/B
  else:
    grid = [train_row, valid_row]
  report.plot_grid(path, grid, f"{sweep.title}, {dataset_tag(dataset_config)}")


def write_report(sweep: Sweep, *, dataset_config: str, runs_dir: str, results_dir: str,
                 epochs: int, extra: dict[str, str] | None = None) -> tuple[str, str]:
  """Writes RESULTS_DIR/<sweep>.md and .png from the workdirs; returns both paths."""
  os.makedirs(results_dir, exist_ok=True)
  md_path = os.path.join(results_dir, f"{sweep.name}.md")
  png_path = os.path.join(results_dir, f"{sweep.name}.png")
  with open(md_path, "w", encoding="utf-8") as f:
    f.write(build_table(sweep, dataset_config=dataset_config, runs_dir=runs_dir,
                        epochs=epochs, extra=extra, results_dir=results_dir))
  build_plot(sweep, png_path, dataset_config=dataset_config, runs_dir=runs_dir)
  return md_path, png_path


def parse_args(argv: Sequence[str]) -> tuple[argparse.Namespace, dict[str, str]]:
  """The script's flags, plus the `--config.FIELD=VALUE` pass-through overrides."""
  parser = argparse.ArgumentParser(
      description="Runs the DeepRec paper's experiments as sweeps of autorec_jax runs.",
      epilog="Any --config.FIELD=VALUE is passed on to every point.")
  parser.add_argument("--sweep", required=True,
                      help=f"one of {', '.join(SWEEPS)}, a comma list, or all")
  parser.add_argument("--dataset-config", default=DEFAULT_DATASET_CONFIG)
  parser.add_argument("--runs-dir", default=DEFAULT_RUNS_DIR)
  parser.add_argument("--results-dir", default=DEFAULT_RESULTS_DIR)
  parser.add_argument("--epochs", type=int, default=None,
                      help="epochs per point (default: the sweep's own)")
  parser.add_argument("--points", default="*",
                      help="run only points whose name matches one of these comma-"
                      "separated globs, e.g. 'user_*' (the table still lists every point)")
  parser.add_argument("--dry-run", action="store_true", help="print the commands only")
  parser.add_argument("--report-only", action="store_true",
                      help="rebuild the table and plot from the workdirs, run nothing")
  args, rest = parser.parse_known_args(argv)
  extra = {}
  for arg in rest:
    if not arg.startswith("--config.") or "=" not in arg:
      parser.error(f"unrecognized argument {arg!r} (only --config.FIELD=VALUE passes on)")
    key, value = arg[len("--config."):].split("=", 1)
    extra[key] = value
  names = list(SWEEPS) if args.sweep == "all" else args.sweep.split(",")
  unknown = [n for n in names if n not in SWEEPS]
  if unknown:
    parser.error(f"unknown sweep {unknown[0]!r}: use one of {', '.join(SWEEPS)} or all")
  for name in names:
    varied = sorted({k for p in SWEEPS[name].points for k in p.overrides} & set(extra))
    if varied:
      parser.error(f"--config.{varied[0]} is what the {name} sweep varies; it cannot be "
                   "passed on to every point")
  if not any(select_points(SWEEPS[n], args.points) for n in names):
    parser.error(f"--points={args.points} matches no point of {', '.join(names)}")
  if args.epochs is not None and args.epochs < 1:
    parser.error("--epochs must be >= 1")
  args.sweeps = [SWEEPS[n] for n in names]
  return args, extra


def main(argv: Sequence[str] | None = None, runner: Runner = _subprocess_runner) -> int:
  args, extra = parse_args(sys.argv[1:] if argv is None else argv)
  failed_all = []
  for sweep in args.sweeps:
    epochs = args.epochs or sweep.epochs
    common = dict(dataset_config=args.dataset_config, runs_dir=args.runs_dir,
                  epochs=epochs, extra=extra)
    if args.dry_run:
      for point in select_points(sweep, args.points):
        done = is_done(point_workdir(sweep, point, args.runs_dir, args.dataset_config),
                       epochs)
        print(("# done: " if done else "") + _shell(point_command(sweep, point, **common)))
      continue
    if not args.report_only:
      failed_all += [f"{sweep.name}/{n}"
                     for n in run_sweep(sweep, runner=runner, points=args.points, **common)]
    md_path, png_path = write_report(sweep, results_dir=args.results_dir, **common)
    print(f"[{sweep.name}] wrote {md_path} and {png_path}", flush=True)
  if failed_all:
    print(f"failed points: {', '.join(failed_all)}", file=sys.stderr)
    return 1
  return 0


if __name__ == "__main__":
  sys.exit(main())
