r"""Strub & Mary 2015 on MovieLens-1M and Jester: table 2, layer-wise vs end-to-end,
figure 2 (denoising loss) and a cold-start view, as runs of `autorec_jax.main`.

  AUTOREC_DATA_DIR=/work/shared/data python experiments/strub_mary_2015.py
  python experiments/strub_mary_2015.py --parts=table2 --folds=0,1,2 --dry-run
  python experiments/strub_mary_2015.py --report-only    # tables from finished runs

Each run is `python -m autorec_jax.main --config=... --workdir=RUNS_DIR/<run>/fold<K>
--config.data.fold=K ...` in a subprocess, one after another. A workdir that already
holds results.json is reused and an unfinished one resumes, so rerunning picks up where
it stopped. Every model uses the same 10-fold split of the ratings (data.seed=0,
data.num_folds=10), the same 2% of each train part carved out for validation (best
epoch; all tuning was done on it), and the test fold only for the final numbers.

Parts (`--parts`, comma-separated; default all):
  table2     table 2: U- and V-encoders (configs/strub_mary_2015.py, stacked) on ML-1M
             and Jester part 3, next to SVD and ALS-WR (configs/movielens_1m.py:svd,
             :als) on both and I-/U-AutoRec-style models (configs/movielens_1m.py:item,
             :user) on ML-1M, all on the same folds.
  layerwise  the same four-layer ML-1M networks trained end to end (`:<variant>_e2e`,
             stacked.enabled=False) vs layer-wise then fine-tuned: RMSE and time.
  fig2       figure 2: validation RMSE per epoch of the U-encoder's two-layer
             autoencoder (outer stage recipe) for several (alpha, beta, noise) settings.
  buckets    test RMSE/MAE of fold 0's U- and V-encoders by user and by item activity.

Writes RESULTS_DIR/strub_mary_2015.md (tables 1-3), strub_mary_2015_fig2.png and
strub_mary_2015_buckets.md. NL-PMF (in the paper's table) is not implemented.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import shlex
import statistics
import subprocess
import sys
import time
from typing import Callable, Sequence

if __package__ in (None, ""):  # run as `python experiments/strub_mary_2015.py`
  sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from configs import strub_mary_2015 as sm_config  # pylint: disable=wrong-import-position
from experiments import report  # pylint: disable=wrong-import-position

SM_CONFIG = "configs/strub_mary_2015.py"
ML1M_CONFIG = "configs/movielens_1m.py"
DEFAULT_RUNS_DIR = "runs/strub_mary_2015"
DEFAULT_RESULTS_DIR = "experiments/results"
PARTS = ("table2", "layerwise", "fig2", "buckets")
WALL_FILE = "experiment_wall.json"  # wall seconds of the run, written by this script


@dataclasses.dataclass(frozen=True)
class Model:
  """One row of a table: a config (file:variant), its overrides, the paper's numbers."""

  name: str                 # folder under RUNS_DIR
  label: str                # row label
  dataset: str              # "MovieLens-1M" or "Jester part 3"
  config: str               # --config value
  overrides: tuple[tuple[str, str], ...] = ()
  paper_rmse: str = "n/a"
  paper_mae: str = "n/a"


# The other configs' rows get the U-/V-encoders' split: same folds, same validation part.
_SPLIT = (("data.num_folds", "10"),
          ("data.valid_fraction", repr(sm_config.get_config().data.valid_fraction)))
_FOLDS10 = _SPLIT
_JESTER = (("data.name", "jester"),) + _SPLIT
# The baselines' lambda as recorded (model.reg unset would scale it with the data).
_REG = (("model.reg", "0.03"),)

TABLE2 = (
    Model("ml1m_svd", "SVD, gradient, biases, rank 30 (`movielens_1m.py:svd`)", "MovieLens-1M",
          f"{ML1M_CONFIG}:svd", _FOLDS10 + _REG, paper_rmse="0.852 ± 0.003"),
    Model("ml1m_als", "ALS-WR, biases, rank 20 (`movielens_1m.py:als`)", "MovieLens-1M",
          f"{ML1M_CONFIG}:als", _FOLDS10 + _REG, paper_rmse="0.850 ± 0.004"),
    Model("ml1m_autorec_u", "U-AutoRec style (`movielens_1m.py:user`)", "MovieLens-1M",
          f"{ML1M_CONFIG}:user", _FOLDS10, paper_rmse="0.874 ± 0.003"),
    Model("ml1m_autorec_i", "I-AutoRec style (`movielens_1m.py:item`; paper: V-AutoRec)",
          "MovieLens-1M", f"{ML1M_CONFIG}:item", _FOLDS10, paper_rmse="0.831 ± 0.003"),
    Model("ml1m_u", "U-encoder (stacked, n-n/10-n/12-n/10-n)", "MovieLens-1M",
          f"{SM_CONFIG}:ml1m_u", paper_rmse="0.861 ± 0.003", paper_mae="0.676 ± 0.02"),
    Model("ml1m_v", "V-encoder (stacked, n-n/10-n/12-n/10-n)", "MovieLens-1M",
          f"{SM_CONFIG}:ml1m_v", paper_rmse="0.840 ± 0.004", paper_mae="0.656 ± 0.02"),
    Model("ml1m_v_full", "V-encoder, stacked, trained on the whole 90% (the paper's data "
          "use; fixed epochs, no validation part)", "MovieLens-1M", f"{SM_CONFIG}:ml1m_v",
          (("data.valid_fraction", "0.0"),), paper_rmse="0.840 ± 0.004",
          paper_mae="0.656 ± 0.02"),
    Model("jester_svd", "SVD, gradient, biases, rank 30 (`movielens_1m.py:svd`)",
          "Jester part 3",
          f"{ML1M_CONFIG}:svd", _JESTER + _REG, paper_rmse="4.117 ± 0.04"),
    Model("jester_als", "ALS-WR, biases, rank 20 (`movielens_1m.py:als`)", "Jester part 3",
          f"{ML1M_CONFIG}:als", _JESTER + _REG, paper_rmse="4.108 ± 0.02"),
    Model("jester_u", "U-encoder (stacked)", "Jester part 3", f"{SM_CONFIG}:jester_u",
          paper_rmse="4.107 ± 0.03"),
    Model("jester_v", "V-encoder (stacked, n/1000, n/1500)", "Jester part 3",
          f"{SM_CONFIG}:jester_v", paper_rmse="5.001 ± 0.10"),
)
ML1M_U, ML1M_V = TABLE2[4], TABLE2[5]

LAYERWISE = (
    (ML1M_U, Model("ml1m_u_e2e", "U-encoder, end to end", "MovieLens-1M",
                   f"{SM_CONFIG}:ml1m_u_e2e")),
    (ML1M_V, Model("ml1m_v_e2e", "V-encoder, end to end", "MovieLens-1M",
                   f"{SM_CONFIG}:ml1m_v_e2e")),
)


@dataclasses.dataclass(frozen=True)
class Fig2Point:
  """One curve of figure 2: corruption ratio nu (75% masking, 25% salt-and-pepper)."""

  name: str
  nu: float
  alpha: float
  beta: float

  @property
  def ratio(self) -> float:
    """The paper's balance nu*alpha / ((1-nu)*beta) (1/3 advised); inf when beta=0."""
    if self.nu == 0.0:
      return 0.0
    return math.inf if self.beta == 0 else self.nu * self.alpha / ((1 - self.nu) * self.beta)

  @property
  def label(self) -> str:
    return f"nu={self.nu:g}, alpha={self.alpha:g}, beta={self.beta:g}"


FIG2_POINTS = (
    Fig2Point("clean", 0.0, 1.0, 1.0),
    Fig2Point("balanced", 0.25, 1.0, 1.0),      # 0.25*1/(0.75*1) = 1/3
    Fig2Point("denoise_heavy", 0.25, 1.0, 0.25),  # 4/3
    Fig2Point("beta0", 0.25, 1.0, 0.0),         # reconstruction ignored
)
FIG2_VARIANT = "ml1m_u"
FIG2_EPOCHS = 15


def fig2_model(point: Fig2Point, epochs: int = FIG2_EPOCHS) -> Model:
  """The U-encoder's outer stage as a standalone two-layer run with this loss/noise.

  Learning rate, decay and weight decay come from the config's `stacked.outer`, so the
  figure follows any retuning of the config.
  """
  cfg = sm_config.get_config(FIG2_VARIANT)
  outer = cfg.stacked.outer
  overrides = {
      "stacked.enabled": "False",
      "model.hidden_fractions": f"({cfg.model.hidden_fractions[0]},)",
      "optim.learning_rate": repr(outer.learning_rate),
      "optim.decay_rate": repr(outer.decay_rate),
      "optim.weight_decay": repr(outer.weight_decay), "train.num_epochs": str(epochs),
      "noise.masking": repr(0.75 * point.nu), "noise.salt_pepper": repr(0.25 * point.nu),
      "noise.gaussian": "0.0", "loss.alpha": repr(point.alpha), "loss.beta": repr(point.beta),
  }
  return Model(f"fig2_{point.name}", point.label, "MovieLens-1M",
               f"{SM_CONFIG}:{FIG2_VARIANT}_e2e", tuple(overrides.items()))


# --- running -----------------------------------------------------------------------


def workdir(runs_dir: str, model: Model, fold: int) -> str:
  return os.path.join(runs_dir, model.name, f"fold{fold}")


def command(model: Model, fold: int, runs_dir: str, python: str = "python") -> list[str]:
  """The argv that trains one model on one fold (every epoch: the paper's protocol,
  no early stopping)."""
  return [python, "-m", "autorec_jax.main", f"--config={model.config}",
          f"--workdir={workdir(runs_dir, model, fold)}", "--config.train.progress_bar=False",
          "--config.train.patience=0", f"--config.data.fold={fold}"] + [
              f"--config.{k}={v}" for k, v in model.overrides]


def _subprocess_runner(argv: list[str], wd: str) -> int:
  os.makedirs(wd, exist_ok=True)
  with open(os.path.join(wd, "experiment.log"), "a", encoding="utf-8") as log:
    log.write(f"$ {shlex.join(argv)}\n")
    log.flush()
    return subprocess.run(argv, stdout=log, stderr=subprocess.STDOUT, check=False).returncode


Runner = Callable[[list[str], str], int]


def ensure_run(model: Model, fold: int, runs_dir: str, *, runner: Runner = _subprocess_runner,
               dry_run: bool = False, out=None) -> bool:
  """Trains (or resumes) one model on one fold unless its results exist; True if done."""
  out = out or sys.stdout
  wd = workdir(runs_dir, model, fold)
  if os.path.exists(os.path.join(wd, "results.json")):
    return True
  argv = command(model, fold, runs_dir, python=sys.executable)
  if dry_run:
    print(shlex.join(command(model, fold, runs_dir)), file=out)
    return False
  t0 = time.perf_counter()
  rc = runner(argv, wd)
  seconds = time.perf_counter() - t0
  done = rc == 0 and os.path.exists(os.path.join(wd, "results.json"))
  if done:
    with open(os.path.join(wd, WALL_FILE), "w", encoding="utf-8") as f:
      json.dump({"wall_seconds": seconds}, f)
  status = "done" if done else f"FAILED (exit {rc}, see {wd}/experiment.log)"
  print(f"{model.name} fold {fold}: {status} in {seconds:.0f} s", file=out, flush=True)
  return done


# --- reading runs back ---------------------------------------------------------------


def train_seconds(wd: str) -> float | None:
  """Training seconds of a finished run; for a stacked run outer + fine-tuning epochs
  (the inner stage trains on small dense codes and records no time)."""
  run = report.read_run(wd)
  if not run.finished:
    return None
  total = float(run.results["train_seconds"])
  outer = run.results.get("stages", {}).get("outer")
  return total + float(outer["train_seconds"]) if outer else total


def wall_seconds(wd: str) -> float | None:
  path = os.path.join(wd, WALL_FILE)
  if not os.path.exists(path):
    return None
  with open(path, encoding="utf-8") as f:
    return float(json.load(f)["wall_seconds"])


def mean_std(values: Sequence[float], digits: int = 4) -> str:
  """'mean ± std' (sample std over folds), or '—' when there are none."""
  values = [v for v in values if v is not None and math.isfinite(v)]
  if not values:
    return "—"
  std = statistics.stdev(values) if len(values) > 1 else 0.0
  return f"{statistics.mean(values):.{digits}f} ± {std:.{digits}f}"


def _finished(runs_dir: str, model: Model, folds: Sequence[int]):
  """(fold, results) of the folds that finished."""
  out = []
  for fold in folds:
    run = report.read_run(workdir(runs_dir, model, fold))
    if run.finished:
      out.append((fold, run.results))
  return out


def _folds_cell(done, folds) -> str:
  got = ",".join(str(f) for f, _ in done)
  return got if len(done) == len(folds) else f"{got or 'none'} (of {len(folds)})"


def table2_markdown(runs_dir: str, folds: Sequence[int], models=TABLE2) -> str:
  rows = []
  for m in models:
    done = _finished(runs_dir, m, folds)
    secs = [train_seconds(workdir(runs_dir, m, f)) for f, _ in done]
    rows.append([m.dataset, m.label, m.paper_rmse,
                 mean_std([r["test/rmse"] for _, r in done]), m.paper_mae,
                 mean_std([r["test/mae"] for _, r in done]), _folds_cell(done, folds),
                 report.fmt(statistics.mean(secs), 0) if secs else "—",
                 f"`--config={m.config}`"
                 + "".join(f" `--config.{k}={v}`" for k, v in m.overrides)])
  header = ["data", "model", "paper RMSE", "test RMSE (ours)", "paper MAE", "test MAE (ours)",
            "folds", "train s / fold", "config"]
  return report.markdown_table(header, rows)


def layerwise_markdown(runs_dir: str, folds: Sequence[int], pairs=LAYERWISE) -> str:
  rows = []
  for stacked_model, e2e_model in pairs:
    for kind, m in (("layer-wise + fine-tuning", stacked_model), ("end to end", e2e_model)):
      done = _finished(runs_dir, m, folds)
      wds = [workdir(runs_dir, m, f) for f, _ in done]
      secs = [train_seconds(w) for w in wds]
      walls = [w for w in map(wall_seconds, wds) if w is not None]
      rows.append([m.label.split(" (")[0].split(",")[0], kind,
                   mean_std([r["test/rmse"] for _, r in done]),
                   mean_std([r["valid/rmse"] for _, r in done]),
                   mean_std([r["test/mae"] for _, r in done]),
                   _epochs_cell(runs_dir, m, done),
                   report.fmt(statistics.mean(secs), 0) if secs else "—",
                   report.fmt(statistics.mean(walls), 0) if walls else "—",
                   _folds_cell(done, folds)])
  header = ["network", "training", "test RMSE", "valid RMSE", "test MAE", "epochs",
            "train s / fold", "wall s / fold", "folds"]
  return report.markdown_table(header, rows)


def _epochs_cell(runs_dir: str, m: Model, done) -> str:
  """Epochs trained per stage: 'outer+inner+fine-tune' for stacked runs."""
  if not done:
    return "—"
  fold, r = done[0]
  wd = workdir(runs_dir, m, fold)
  if "stages" not in r:
    return str(r["epochs_run"])
  counts = [len(report.read_run(os.path.join(wd, s)).metrics)
            for s in ("stage1_outer", "stage2_inner", "stage3_finetune")]
  return "+".join(map(str, counts))


def fig2_markdown(runs_dir: str, fold: int, points=FIG2_POINTS) -> str:
  rows = []
  for p in points:
    run = report.read_run(workdir(runs_dir, fig2_model(p), fold))
    epochs, valid = run.series("valid/rmse")
    at = dict(zip(epochs, valid))
    best = run.best_valid()
    ratio = "—" if p.nu == 0 else ("∞" if math.isinf(p.ratio) else report.fmt(p.ratio, 2))
    rows.append([p.label, ratio,
                 *(report.fmt(at.get(e)) for e in (1, 3, 5, 10)),
                 f"{report.fmt(best[1])} (epoch {best[0]})" if best else "—",
                 report.fmt(run.results["test/rmse"]) if run.finished else "—"])
  header = ["setting", "nu*alpha/((1-nu)*beta)", "valid @1", "valid @3", "valid @5",
            "valid @10", "best valid", "test RMSE"]
  return report.markdown_table(header, rows)


def fig2_plot(path: str, runs_dir: str, fold: int, points=FIG2_POINTS) -> None:
  lines = []
  for p in points:
    run = report.read_run(workdir(runs_dir, fig2_model(p), fold))
    x, y = run.series("valid/rmse")
    lines.append(report.Line(p.label, x, y, mark_min=True))
  report.plot_grid(path, [[report.Panel(f"U-encoder n-n/10-n, fold {fold}; nu: 75% masking"
                                        " + 25% s&p", "valid RMSE", lines,
                                        max_span=0.08)]],
                   "Figure 2: alpha/beta denoising loss, ML-1M")


def fig2_verdict(runs_dir: str, fold: int, points=FIG2_POINTS) -> str:
  """Sentences, from the numbers, on whether balanced denoising sped up learning and
  improved the RMSE (the paper's claim), and what beta = 0 did."""
  runs = {p.name: report.read_run(workdir(runs_dir, fig2_model(p), fold)) for p in points}
  if not all(r.best_valid() for r in runs.values()):
    return "Figure 2 runs are unfinished."
  clean, balanced, beta0 = (runs[n] for n in ("clean", "balanced", "beta0"))
  (clean_epoch, clean_best), (_, balanced_best) = clean.best_valid(), balanced.best_valid()
  b_epochs, b_valid = balanced.series("valid/rmse")
  reach = next((e for e, v in zip(b_epochs, b_valid) if v <= clean_best), None)
  if reach is None:
    speed = "never reached the clean run's best"
  elif reach < clean_epoch:
    speed = f"reached the clean run's best at epoch {reach} instead of {clean_epoch}"
  else:
    speed = f"reached the clean run's best no earlier (epoch {reach} vs {clean_epoch})"
  verb = "improved" if balanced_best < clean_best else "did not improve"
  return (f"Balanced denoising (nu=0.25, alpha=beta=1) {verb} the best validation RMSE "
          f"({balanced_best:.4f} vs {clean_best:.4f} without noise) and {speed}; "
          f"ignoring reconstruction (beta=0) gave {beta0.best_valid()[1]:.4f}.")


def buckets_markdown(tables: dict[str, dict[str, list[dict]]]) -> str:
  """tables[by][model label] = rmse_by_activity rows -> one markdown table per `by`."""
  out = []
  for by, per_model in tables.items():
    labels = list(per_model)
    first = per_model[labels[0]]
    header = [f"{by} train ratings", f"{by}s", "held-out ratings"]
    header += [f"{l} RMSE" for l in labels] + [f"{l} MAE" for l in labels]
    rows = []
    for k, b in enumerate(first):
      rows.append([b["bucket"], report.fmt(b["rows"]), report.fmt(b["count"])]
                  + [report.fmt(per_model[l][k]["rmse"]) for l in labels]
                  + [report.fmt(per_model[l][k]["mae"]) for l in labels])
    out.append(f"### by {by} activity\n\n" + report.markdown_table(header, rows))
  return "\n".join(out)


def compute_buckets(runs_dir: str, fold: int = 0, models=(ML1M_U, ML1M_V)) -> dict:
  """Per-bucket test errors of finished runs (loads each model; needs JAX)."""
  from autorec_jax.evaluation import buckets  # pylint: disable=import-outside-toplevel
  from autorec_jax.serving import predict
  tables: dict[str, dict[str, list[dict]]] = {"user": {}, "item": {}}
  for m in models:
    wd = workdir(runs_dir, m, fold)
    if not report.read_run(wd).finished:
      continue
    predictor = predict.Predictor(wd)
    test = predictor.part("test")
    pred = predictor.predict(test.user, test.item)
    label = m.label.split(" (")[0]
    for by in tables:
      tables[by][label] = buckets.rmse_by_activity(predictor.data.train, test, pred, by=by)
  return {k: v for k, v in tables.items() if v}


# --- the report ---------------------------------------------------------------------


def report_markdown(runs_dir: str, folds: Sequence[int], fig2_fold: int) -> str:
  folds_text = ",".join(map(str, folds))
  return (
      "# Strub & Mary 2015 reproduced: stacked denoising U-/V-encoders\n\n"
      "Generated by `python experiments/strub_mary_2015.py` from the runs in "
      f"`{runs_dir}`. 10-fold cross-validation by rating (data.seed=0), folds "
      f"{folds_text}; each train part loses 2% to validation (best epoch, all tuning), "
      "except the row trained on the whole 90% (the epochs tuned on that validation "
      "part); "
      "numbers are mean ± sample std over folds of the test fold. Paper: random "
      "90/10 splits with cross-validation, and its Torch code picks the best epoch on "
      "the test set. Jester here is dataset 1 part 3 only (24,938 users x 100 jokes, "
      "616,912 ratings); the paper used all of dataset 1 (73,496 users). Times are on a "
      "2-core CPU shared with other jobs, so they are indicative only.\n\n"
      "## Table 2: RMSE (and MAE) on the test folds\n\n"
      + table2_markdown(runs_dir, folds)
      + "\nNL-PMF (paper: 0.879 ± 0.008 on ML-1M) is not implemented here.\n\n"
      "## Layer-wise training vs end to end (same network, same folds)\n\n"
      + layerwise_markdown(runs_dir, folds)
      + "\nEpochs are outer+inner+fine-tuning for layer-wise runs. Train s: epoch time of "
      "the outer and fine-tuning stages (the inner stage is not timed); wall s: the whole "
      "command, data loading and compilation included.\n\n"
      f"## Figure 2: denoising loss (ML-1M fold {fig2_fold})\n\n"
      "![figure 2](strub_mary_2015_fig2.png)\n\n"
      + fig2_markdown(runs_dir, fig2_fold) + "\n" + fig2_verdict(runs_dir, fig2_fold) + "\n")


def main(argv: Sequence[str] | None = None, runner: Runner = _subprocess_runner) -> int:
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--parts", default=",".join(PARTS))
  parser.add_argument("--folds", default="0,1,2", help="folds of table 2 and layerwise")
  parser.add_argument("--fig2-fold", type=int, default=0)
  parser.add_argument("--runs-dir", default=DEFAULT_RUNS_DIR)
  parser.add_argument("--results-dir", default=DEFAULT_RESULTS_DIR)
  parser.add_argument("--dry-run", action="store_true", help="print the commands only")
  parser.add_argument("--report-only", action="store_true",
                      help="write the tables from finished runs, train nothing")
  args = parser.parse_args(argv)
  parts = [p for p in args.parts.split(",") if p]
  unknown = sorted(set(parts) - set(PARTS))
  if unknown:
    parser.error(f"unknown parts {unknown}; choose from {PARTS}")
  folds = [int(f) for f in args.folds.split(",") if f]

  jobs: list[tuple[Model, int]] = []
  if "table2" in parts or "buckets" in parts:
    jobs += [(m, f) for m in TABLE2 for f in folds]
  if "layerwise" in parts:
    jobs += [(e2e, f) for _, e2e in LAYERWISE for f in folds]
  if "fig2" in parts:
    jobs += [(fig2_model(p), args.fig2_fold) for p in FIG2_POINTS]
  if not args.report_only:
    seen = set()
    for m, f in jobs:
      if (m.name, f) not in seen:
        seen.add((m.name, f))
        ensure_run(m, f, args.runs_dir, runner=runner, dry_run=args.dry_run)
  if args.dry_run:
    return 0

  os.makedirs(args.results_dir, exist_ok=True)
  md = os.path.join(args.results_dir, "strub_mary_2015.md")
  with open(md, "w", encoding="utf-8") as f:
    f.write(report_markdown(args.runs_dir, folds, args.fig2_fold))
  print(open(md, encoding="utf-8").read())
  if "fig2" in parts:
    fig2_plot(os.path.join(args.results_dir, "strub_mary_2015_fig2.png"), args.runs_dir,
              args.fig2_fold)
  if "buckets" in parts:
    tables = compute_buckets(args.runs_dir, fold=0)
    if tables:
      text = ("# Cold-start view: test error by activity (ML-1M, fold 0)\n\n"
              "Held-out test ratings grouped by how many train ratings their user (or "
              "item) has. Generated by `python experiments/strub_mary_2015.py "
              "--parts=buckets`.\n\n" + buckets_markdown(tables))
      with open(os.path.join(args.results_dir, "strub_mary_2015_buckets.md"), "w",
                encoding="utf-8") as f:
        f.write(text)
      print(text)
  return 0


if __name__ == "__main__":
  sys.exit(main())
