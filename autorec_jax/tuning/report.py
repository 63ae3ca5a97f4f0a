"""What a study leaves in its workdir: the trials table, a plot, the best config and
results.json, all rebuilt from Optuna's storage and the trials' own workdirs.

- `trials.csv` and `trials.md`: one row per trial: its number, state (complete,
  pruned, cut (budget), failed, interrupted), validation RMSE (a complete trial's
  best-by-validation; a stopped one's best so far), epochs reached, seconds and the
  sampled parameters;
- `trials.png`: validation RMSE per epoch of every trial, and each trial's RMSE
  against its number with the best so far (matplotlib, already a dependency of the
  reports);
- `best_config.json` (the winner's resolved config, a copy of its config.json) and
  `best_config.py`, a config file that trains it again:
  `python -m autorec_jax.main --config=WORKDIR/best_config.py --workdir=DIR`
  (every trial's folder has such a `config.py` too);
- `results.json`: the winner's number, parameters, validation RMSE, and the test
  metrics its run measured once on its best-by-validation checkpoint.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import shutil
from typing import Any, Callable

import optuna

from autorec_jax.artifacts.run_config import read_json
from autorec_jax.runtime import cli

OUTPUT_FILES = ("trials.csv", "trials.md", "trials.png", "best_config.json", "best_config.py",
                "results.json")
_STATE = optuna.trial.TrialState


class NoWinner(ValueError):
  """No trial of the study has completed yet."""


def state_label(t: optuna.trial.FrozenTrial) -> str:
  if t.state == _STATE.COMPLETE:
    return "complete"
  if t.state == _STATE.PRUNED:
    return "cut (budget)" if t.user_attrs.get("stop") == "budget" else "pruned"
  if t.state == _STATE.FAIL:
    return "failed"
  return "interrupted"  # RUNNING in the storage, but no tuner runs it


def valid_rmse(t: optuna.trial.FrozenTrial) -> float | None:
  """A complete trial's best-by-validation RMSE; a stopped trial's best so far."""
  if t.state == _STATE.COMPLETE:
    return t.value
  values = [v for v in t.intermediate_values.values() if math.isfinite(v)]
  return min(values) if values else None


def rows(study: optuna.Study) -> list[dict[str, Any]]:
  """The table's rows, in trial order (trials queued but never started left out)."""
  out = []
  for t in study.trials:
    if t.state == _STATE.WAITING:
      continue
    epochs = t.user_attrs.get("epochs")
    if epochs is None and t.intermediate_values:
      epochs = max(t.intermediate_values)
    out.append({"trial": t.number, "state": state_label(t), "valid_rmse": valid_rmse(t),
                "epochs": epochs, "seconds": t.user_attrs.get("seconds"),
                "params": dict(t.params), "workdir": t.user_attrs.get("workdir", ""),
                "error": t.user_attrs.get("error", "")})
  return out


def _show(value: Any) -> str:
  if value is None:
    return "—"
  if isinstance(value, float):
    return f"{value:.4g}"
  return str(value)


def trial_line(t: optuna.trial.FrozenTrial) -> str:
  """`trial 3  complete  valid RMSE 0.8412  (12 epochs, 35 s)  optim.learning_rate=...`."""
  label = state_label(t)
  if label == "failed":
    return f"trial {t.number}  failed: {t.user_attrs.get('error', '?')}"
  rmse = valid_rmse(t)
  parts = [f"trial {t.number}", label,
           f"valid RMSE {rmse:.4f}" if rmse is not None else "valid RMSE n/a",
           f"({t.user_attrs.get('epochs', 0)} epochs, {t.user_attrs.get('seconds', 0):.0f} s)",
           " ".join(f"{k}={_show(v)}" for k, v in t.params.items())]
  return "  ".join(parts)


def markdown(table: list[dict], names: list[str], best: int | None) -> str:
  head = ["trial", "state", "valid RMSE", "epochs", "seconds", *names]
  lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
  for r in table:
    state = r["state"] + (" (best)" if r["trial"] == best else "")
    rmse = "—" if r["valid_rmse"] is None else f"{r['valid_rmse']:.4f}"
    seconds = "—" if r["seconds"] is None else f"{r['seconds']:.0f}"
    cells = [str(r["trial"]), state, rmse, _show(r["epochs"]), seconds,
             *(_show(r["params"].get(n)) for n in names)]
    lines.append("| " + " | ".join(cells) + " |")
  return "\n".join(lines) + "\n"


def _csv(table: list[dict], names: list[str]) -> str:
  out = io.StringIO()
  writer = csv.writer(out, lineterminator="\n")
  writer.writerow(["trial", "state", "valid_rmse", "epochs", "seconds", *names, "workdir",
                   "error"])
  for r in table:
    writer.writerow([r["trial"], r["state"], "" if r["valid_rmse"] is None else r["valid_rmse"],
                     "" if r["epochs"] is None else r["epochs"],
                     "" if r["seconds"] is None else r["seconds"],
                     *("" if r["params"].get(n) is None else r["params"][n] for n in names),
                     r["workdir"], r["error"]])
  return out.getvalue()


def _curve(workdir: str) -> tuple[list[int], list[float]]:
  """(epochs, validation RMSE) from a trial's metrics.jsonl (bad lines skipped)."""
  epochs, values = [], []
  path = os.path.join(workdir, "metrics.jsonl")
  if not os.path.exists(path):
    return epochs, values
  with open(path, encoding="utf-8", errors="replace") as f:
    for line in f:
      try:
        row = json.loads(line)
      except json.JSONDecodeError:
        continue
      if isinstance(row, dict) and row.get("valid/rmse") is not None and isinstance(
          row.get("epoch"), int):
        epochs.append(row["epoch"])
        values.append(float(row["valid/rmse"]))
  return epochs, values


_COLOURS = {"complete": "tab:blue", "pruned": "tab:orange", "cut (budget)": "tab:purple",
            "failed": "tab:red", "interrupted": "tab:gray"}


def plot(table: list[dict], workdir: str, out) -> None:
  """Writes trials.png to the binary file `out`."""
  import matplotlib  # pylint: disable=import-outside-toplevel
  matplotlib.use("Agg")
  from matplotlib import pyplot as plt  # pylint: disable=import-outside-toplevel
  from matplotlib.ticker import MaxNLocator  # pylint: disable=import-outside-toplevel
  fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
  for r in table:
    epochs, values = _curve(os.path.join(workdir, r["workdir"]))
    if epochs:
      left.plot(epochs, values, color=_COLOURS[r["state"]], lw=1,
                ls="-" if r["state"] == "complete" else ":", alpha=0.8)
  left.set(xlabel="epoch", ylabel="validation RMSE", title="validation RMSE per epoch")
  best, xs, ys = math.inf, [], []
  for state, colour in _COLOURS.items():
    pts = [(r["trial"], r["valid_rmse"]) for r in table
           if r["state"] == state and r["valid_rmse"] is not None]
    if pts:
      right.scatter(*zip(*pts), color=colour, label=state, s=18)
  for r in table:
    if r["state"] == "complete" and r["valid_rmse"] is not None:
      best = min(best, r["valid_rmse"])
    if math.isfinite(best):
      xs.append(r["trial"])
      ys.append(best)
  if xs:
    right.step(xs, ys, where="post", color="black", lw=1, label="best complete")
  right.set(xlabel="trial", ylabel="validation RMSE", title="trials (lower is better)")
  right.xaxis.set_major_locator(MaxNLocator(integer=True))
  if right.get_legend_handles_labels()[0]:
    right.legend(fontsize=8)
  for ax in (left, right):
    ax.grid(alpha=0.3)
  fig.tight_layout()
  fig.savefig(out, format="png", dpi=110)
  plt.close(fig)


_CONFIG_FILE = '''r"""{doc}: the config saved in {json_name} beside this file. To train it again:

  python -m autorec_jax.main --config={path} --workdir=DIR
"""

import os

from autorec_jax.artifacts.run_config import typed_config


def get_config(arg=None):
  del arg
  return typed_config(os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                   "{json_name}"))
'''


def write_config_file(folder: str, json_name: str, doc: str) -> str:
  """Writes `folder/<json_name without .json>.py`, a config file returning the config
  saved in `folder/json_name`; returns its path."""
  path = os.path.join(folder, json_name[:-len(".json")] + ".py")
  with cli.atomic_output(path, encoding="utf-8") as f:
    f.write(_CONFIG_FILE.format(doc=doc, json_name=json_name, path=path))
  return path


def _summary(results: dict) -> str:
  test = results.get("test/rmse")
  test = "n/a (empty test part)" if test is None else f"{test:.4f}  MAE {results['test/mae']:.4f}"
  return (f"best trial {results['best_trial']}: valid RMSE {results['valid/rmse']:.4f}; its "
          f"test RMSE {test}; config {results['best_config']}")


def write_tables(study: optuna.Study, workdir: str, params: list):
  """Writes trials.csv, trials.md and trials.png; returns (the markdown table, the
  winner or None, {state: count})."""
  table = rows(study)
  names = [p.name for p in params]
  complete = [t for t in study.trials if t.state == _STATE.COMPLETE]
  winner = min(complete, key=lambda t: (t.value, t.number)) if complete else None
  text = markdown(table, names, winner.number if winner else None)
  with cli.atomic_output(os.path.join(workdir, "trials.csv"), encoding="utf-8") as f:
    f.write(_csv(table, names))
  with cli.atomic_output(os.path.join(workdir, "trials.png"), "wb") as f:
    plot(table, workdir, f)
  with cli.atomic_output(os.path.join(workdir, "trials.md"), encoding="utf-8") as f:
    f.write(f"# Trials\n\n{text}\n![trials](trials.png)\n")
  counts: dict[str, int] = {}
  for r in table:
    counts[r["state"]] = counts.get(r["state"], 0) + 1
  return text, winner, counts


def write(study: optuna.Study, workdir: str, params: list, *, search_seconds: float,
          budget_s: float | None, log: Callable[[str], None] = print) -> dict:
  """Writes every output of the study and prints the table; returns results.json's
  dict. NoWinner (after the table and plot are written) when no trial completed."""
  text, winner, counts = write_tables(study, workdir, params)
  log("\n" + text.rstrip())
  if winner is None:
    raise NoWinner(f"no trial has completed yet ({_counts(counts)}); run the same command "
                   "with a larger --budget (or more --trials) to continue the study")
  trial_dir = os.path.join(workdir, winner.user_attrs["workdir"])
  run = read_json(os.path.join(trial_dir, "results.json"), "the trial's results as JSON")
  shutil.copyfile(os.path.join(trial_dir, "config.json"),
                  os.path.join(workdir, "best_config.json"))
  best_py = write_config_file(workdir, "best_config.json",
                              f"The best config of the study in {workdir} (trial "
                              f"{winner.number})")
  first = study.trials[0]
  results = {
      "best_trial": winner.number, "best_workdir": winner.user_attrs["workdir"],
      "best_config": best_py, "params": dict(winner.params),
      "valid/rmse": winner.value, "best_epoch": run.get("best_epoch"),
      "test/rmse": run.get("test/rmse"), "test/mae": run.get("test/mae"),
      "first_trial_is_config_as_given": bool(first.user_attrs.get("config_as_given")),
      "first_trial_valid/rmse": valid_rmse(first),
      "trials": counts, "search_seconds": round(search_seconds, 1),
      "budget_seconds": budget_s, "winner_results": run,
  }
  with cli.atomic_output(os.path.join(workdir, "results.json"), encoding="utf-8") as f:
    json.dump(results, f, indent=2, sort_keys=True, allow_nan=False)
  log(_summary(results))
  return results


def _counts(counts: dict[str, int]) -> str:
  return ", ".join(f"{n} {state}" for state, n in counts.items()) or "no trials"
