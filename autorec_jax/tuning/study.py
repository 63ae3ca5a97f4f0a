"""A budgeted search: Optuna trials, each a normal training run in its own workdir.

`tune(cfg, workdir, settings)` samples the config's search space
(`autorec_jax.tuning.spaces`) with Optuna's TPE sampler (seeded), trains each trial
with the trainer its config names, in `workdir/trials/NNNN/`, and follows it through
the metric writer's observer seam (`training.metrics.observing`): every validation
RMSE is reported to Optuna, a trial the median pruner judges hopeless is stopped, and
a trial still running when the budget is spent is cut after its next evaluation. The
winner is the completed trial with the best validation RMSE; its own workdir already
holds its test metrics (the trainer evaluates the best-by-validation checkpoint on
test once, at the end, and selection never reads them). `autorec_jax.tuning.report`
then writes the tables, the plot, the best config and results.json.

The study lives in `workdir/study.log` (Optuna's journal file storage) beside
`study.json`, the config and search space it tunes: running the same command again
continues the study, with the budget counting the time its finished trials already
took; a workdir holding a study of another config is refused.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os
import shutil
import time
import warnings
from typing import Any, Callable

import optuna
from absl import logging as absl_logging

from autorec_jax.artifacts.run_config import config_json, flatten, read_json
from autorec_jax.config import checks as config_checks
from autorec_jax.config.checks import ConfigError
from autorec_jax.runtime import signals
from autorec_jax.training import metrics
from autorec_jax.training import registry as trainer_registry
from autorec_jax.training import workdir as workdir_lib
from autorec_jax.tuning import report, spaces
from autorec_jax.tuning.budget import Budget, format_duration

STUDY_FILE = "study.json"
STORAGE_FILE = "study.log"
TRIALS_DIR = "trials"
STUDY_NAME = "autorec_jax"
# A trial that fails (a NaN loss, a config the trainer refuses) is recorded and the
# search goes on; this many failures in a row stop it, since something is wrong with
# every trial rather than with one point of the space.
MAX_FAILURES_IN_A_ROW = 3
# What a study workdir holds (besides the lock); --overwrite deletes exactly these.
STUDY_FILES = (STUDY_FILE, STORAGE_FILE, STORAGE_FILE + ".lock", TRIALS_DIR,
               *report.OUTPUT_FILES)


@dataclasses.dataclass(frozen=True)
class Settings:
  """How to search (none of it is part of the study's identity).

  budget_s: the search's wall time in seconds, over every run of the tuner on the
    study (None: no limit; then max_trials must be set).
  max_trials: stop once the study has this many trials (None: no limit).
  seed: the TPE sampler's seed (offset by the number of trials already run, so a
    resumed study does not redraw its first points).
  startup_trials: trials sampled at random before TPE models the results.
  prune: stop trials whose validation RMSE is worse than the median of earlier
    trials at the same epoch (Optuna's MedianPruner).
  prune_startup: finished trials before any trial is pruned.
  prune_warmup: evaluations a trial always gets before it may be pruned.
  start_from_config: the study's first trial is the config as given (for every
    searched field whose value lies in the space).
  """

  budget_s: float | None = None
  max_trials: int | None = None
  seed: int = 0
  startup_trials: int = 5
  prune: bool = True
  prune_startup: int = 3
  prune_warmup: int = 5
  start_from_config: bool = True


class StudyError(ValueError):
  """The search cannot go on (the message says why)."""


class BudgetSpent(optuna.TrialPruned):
  """Raised by a trial's observer once the search's budget is spent."""


class _Watcher:
  """The observer of one trial: reports validation RMSE, prunes, cuts at the budget."""

  def __init__(self, trial: optuna.Trial, budget: Budget, prune: bool):
    self.trial, self.budget, self.prune = trial, budget, prune
    self.step = 0  # Optuna's step: the epoch, kept increasing across stacked stages
    self.epoch = 0

  def __call__(self, row: dict[str, Any]) -> None:
    if isinstance(row.get("epoch"), int):
      self.epoch = max(self.epoch, row["epoch"])
    rmse = row.get("valid/rmse")
    if rmse is not None:
      self.step = max(self.step + 1, self.epoch)
      self.trial.report(float(rmse), self.step)
    if self.budget.spent():
      raise BudgetSpent(f"the budget was spent at epoch {self.epoch}")
    if rmse is not None and self.prune and self.trial.should_prune():
      raise optuna.TrialPruned(f"pruned at epoch {self.epoch}")


def identity(cfg, space: str, params: list[spaces.Param], fixed) -> dict:
  """What makes a study: the resolved config, the fields fixed by overrides, and the
  search space (its trainer and parameters with their ranges)."""
  return {"config": json.loads(config_json(cfg)), "fixed": sorted(fixed), "space": space,
          "params": {p.name: p.describe() for p in params}}


def _check_workdir(workdir: str) -> None:
  """Refuses a --workdir that cannot hold a study (one line naming why)."""
  if os.path.exists(workdir) and not os.path.isdir(workdir):
    raise workdir_lib.WorkdirError(f"{workdir}: a file, not a folder; pass another --workdir")
  try:
    os.makedirs(workdir, exist_ok=True)
  except OSError as e:
    raise workdir_lib.WorkdirError(f"{workdir}: cannot create the folder "
                                   f"({e.strerror or e})") from e
  if not os.access(workdir, os.W_OK | os.X_OK):
    raise workdir_lib.WorkdirError(f"{workdir}: not writable; pass another --workdir")
  if workdir_lib.is_run(workdir):
    raise workdir_lib.WorkdirError(f"{workdir} holds a training run, not a study; pass "
                                   "another --workdir")
  if not os.path.exists(os.path.join(workdir, STUDY_FILE)):
    theirs = [n for n in STUDY_FILES if os.path.exists(os.path.join(workdir, n))]
    if theirs:
      raise workdir_lib.WorkdirError(
          f"{workdir} is not a study of autorec_jax but holds {', '.join(theirs)}; the "
          "tuner would write over them: pass another --workdir")


def _differences(saved: dict, wanted: dict) -> list[str]:
  a, b = flatten(saved), flatten(wanted)
  return sorted(k for k in a.keys() | b.keys() if a.get(k) != b.get(k))


def claim(workdir: str, ident: dict) -> None:
  """Writes study.json for a new study; refuses one of another config or space."""
  path = os.path.join(workdir, STUDY_FILE)
  if os.path.exists(path):
    saved = read_json(path, "the study's config as JSON")
    diff = _differences(saved if isinstance(saved, dict) else {}, ident)
    if diff:
      raise ConfigError(
          f"{workdir} holds a study of another config or search space ({', '.join(diff[:8])}"
          " differ, per its study.json); pass the same config and overrides to continue "
          "it, use another --workdir, or --overwrite to delete that study")
    return
  tmp = path + ".tmp"
  with open(tmp, "w", encoding="utf-8") as f:
    json.dump(ident, f, indent=2, sort_keys=True)
  os.replace(tmp, path)


def clear(workdir: str) -> None:
  """Deletes a study (its files, nothing else) from `workdir` (--overwrite)."""
  if not os.path.isdir(workdir) or not os.path.exists(os.path.join(workdir, STUDY_FILE)):
    _check_workdir(workdir)  # a folder that is no study: say what is there
    return
  with workdir_lib.locked(workdir):
    for name in STUDY_FILES:
      path = os.path.join(workdir, name)
      if os.path.isdir(path):
        shutil.rmtree(path)
      elif os.path.lexists(path):
        os.remove(path)


def open_study(workdir: str, settings: Settings,
               pruner: optuna.pruners.BasePruner | None = None) -> optuna.Study:
  """The study in `workdir/study.log` (created when missing), with a TPE sampler
  seeded by `settings.seed` plus the number of trials it holds, and the median pruner
  (or `pruner`)."""
  path = os.path.join(workdir, STORAGE_FILE)
  # Our lock on the workdir is held: a journal lock left by a killed run is stale.
  with contextlib.suppress(FileNotFoundError):
    os.remove(path + ".lock")
  from optuna.storages import JournalStorage  # pylint: disable=import-outside-toplevel
  from optuna.storages.journal import JournalFileBackend  # pylint: disable=import-outside-toplevel
  if pruner is None:
    pruner = (optuna.pruners.MedianPruner(n_startup_trials=settings.prune_startup,
                                          n_warmup_steps=settings.prune_warmup)
              if settings.prune else optuna.pruners.NopPruner())
  study = optuna.create_study(storage=JournalStorage(JournalFileBackend(path)),
                              study_name=STUDY_NAME, pruner=pruner, direction="minimize",
                              sampler=optuna.samplers.RandomSampler(), load_if_exists=True)
  with warnings.catch_warnings():
    warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
    study.sampler = optuna.samplers.TPESampler(
        seed=settings.seed + len(study.trials), n_startup_trials=settings.startup_trials,
        multivariate=True, constant_liar=False)
  return study


def spent_seconds(study: optuna.Study) -> float:
  """The wall time the study's finished trials took (an interrupted trial's is lost)."""
  return sum((t.datetime_complete - t.datetime_start).total_seconds() for t in study.trials
             if t.datetime_complete is not None and t.datetime_start is not None)


def needs_validation(cfg) -> None:
  """ConfigError unless the runs have a validation part to select on."""
  if cfg.data.name != "netflix" and not cfg.data.valid_fraction > 0:
    raise ConfigError(f"data.valid_fraction={cfg.data.valid_fraction} leaves no validation "
                      "part; the tuner selects on validation RMSE (never on test), so it "
                      "must be > 0")


def tune(cfg, workdir: str, settings: Settings, *, fixed=(), log: Callable[[str], None] = print,
         clock: Callable[[], float] = time.monotonic,
         pruner: optuna.pruners.BasePruner | None = None) -> dict:
  """Runs (or continues) the study of `cfg` in `workdir`; returns results.json's dict.

  `fixed`: the dotted fields set on the command line, left out of the search.
  `clock` measures the budget; `pruner` replaces the median pruner (e.g. a
  ThresholdPruner; it acts only with `settings.prune`).
  """
  if settings.budget_s is None and settings.max_trials is None:
    raise ValueError("give a budget (--budget) or a number of trials (--trials)")
  config_checks.validate(cfg)
  needs_validation(cfg)
  cfg = resolve_data_defaults(cfg, log)
  name, params = spaces.space_for(cfg)
  params = spaces.searched(params, fixed)
  if not params:
    raise ConfigError(f"every field of the {name!r} search space is fixed by an override; "
                      "nothing is left to tune")
  _check_workdir(workdir)
  with workdir_lib.locked(workdir):
    claim(workdir, identity(cfg, name, params, fixed))
    study = open_study(workdir, settings, pruner)
    if settings.start_from_config and not study.trials:
      start = spaces.baseline(cfg, params)
      study.enqueue_trial(start, user_attrs={"config_as_given": len(start) == len(params)})
    budget = Budget(settings.budget_s, spent_seconds(study), clock)
    budget.start()
    log(f"study {workdir}: {name} space, {len(params)} parameters; "
        f"{_progress(study, budget, settings)}")
    try:
      _search(study, cfg, params, workdir, budget, settings, log)
    except BaseException:
      with contextlib.suppress(Exception):  # the table so far, for a look at what failed
        report.write_tables(study, workdir, params)
      raise
    return report.write(study, workdir, params, log=log,
                        search_seconds=spent_seconds(study), budget_s=settings.budget_s)


def resolve_data_defaults(cfg, log: Callable[[str], None] = print):
  """`cfg` with `preprocess.bias=auto` and an unset `optim.weight_decay` decided on
  its data (`data_defaults.resolve_sparsity`, as training would), so the search
  centres on the values the config stands for and every trial's config is concrete."""
  if cfg.preprocess.bias != "auto" and cfg.optim.weight_decay is not None:
    return cfg
  from autorec_jax.training import data_defaults, loop  # pylint: disable=import-outside-toplevel
  data = loop.load_data(cfg)
  cfg, choice = data_defaults.resolve_sparsity(cfg, data.train, data.loaded.rating_scale)
  log(choice.why)
  return cfg


def _progress(study: optuna.Study, budget: Budget, settings: Settings) -> str:
  parts = [f"{_started(study)} trials so far"]
  if settings.budget_s is not None:
    parts.append(f"{format_duration(max(budget.left(), 0))} of "
                 f"{format_duration(settings.budget_s)} left")
  if settings.max_trials is not None:
    parts.append(f"at most {settings.max_trials} trials")
  return ", ".join(parts)


def _started(study: optuna.Study) -> int:
  """Trials started so far (a queued one is not)."""
  return sum(t.state != optuna.trial.TrialState.WAITING for t in study.trials)


def _search(study, cfg, params, workdir, budget, settings, log) -> None:
  failures = 0
  while not budget.spent() and (settings.max_trials is None
                                or _started(study) < settings.max_trials):
    trial = study.ask()
    frozen = _run_trial(study, trial, cfg, params, workdir, budget, settings)
    log(report.trial_line(frozen))
    failed = frozen.state == optuna.trial.TrialState.FAIL
    failures = failures + 1 if failed else 0
    if failures >= MAX_FAILURES_IN_A_ROW:
      raise StudyError(f"{failures} trials in a row failed, the last with: "
                         f"{frozen.user_attrs.get('error')}")


def trial_dir(workdir: str, number: int) -> str:
  return os.path.join(workdir, TRIALS_DIR, f"{number:04d}")


def _run_trial(study, trial, cfg, params, workdir, budget, settings):
  """Trains one trial; returns it as recorded (complete, pruned, cut or failed)."""
  values = spaces.sample(trial, params)
  path = trial_dir(workdir, trial.number)
  trial.set_user_attr("workdir", os.path.relpath(path, workdir))
  if workdir_lib.is_run(path):  # a trial number the storage lost: start it afresh
    workdir_lib.clear_workdir(path)
  os.makedirs(path, exist_ok=True)
  report.write_config_file(path, "config.json", f"Trial {trial.number} of the study in "
                           f"{workdir}")
  watcher = _Watcher(trial, budget, settings.prune)
  t0 = time.perf_counter()
  state, value = optuna.trial.TrialState.FAIL, None
  try:
    trial_cfg = spaces.apply(cfg, values)
    config_checks.validate(trial_cfg)
    with metrics.observing(watcher), _console_to(os.path.join(path, "console.log")):
      results = trainer_registry.select(trial_cfg)(trial_cfg, path)
    value = results.get("valid/rmse")
    if value is None or not math.isfinite(value):
      trial.set_user_attr("error", "no validation RMSE")
    else:
      state = optuna.trial.TrialState.COMPLETE
      trial.set_user_attr("best_epoch", results.get("best_epoch"))
  except BudgetSpent:
    state = optuna.trial.TrialState.PRUNED
    trial.set_user_attr("stop", "budget")
  except optuna.TrialPruned:
    state = optuna.trial.TrialState.PRUNED
    trial.set_user_attr("stop", "pruned")
  except (FloatingPointError, ConfigError) as e:
    trial.set_user_attr("error", str(e)[:500])
  except (signals.Interrupted, KeyboardInterrupt):
    raise  # left running in the storage: the table calls it interrupted
  except BaseException as e:
    trial.set_user_attr("error", f"{type(e).__name__}: {e}"[:500])
    _finish(study, trial, watcher, t0, state, value)
    raise
  return _finish(study, trial, watcher, t0, state, value)


def _finish(study, trial, watcher, t0, state, value):
  trial.set_user_attr("seconds", round(time.perf_counter() - t0, 2))
  trial.set_user_attr("epochs", watcher.epoch)
  if state == optuna.trial.TrialState.COMPLETE:
    return study.tell(trial, float(value))
  return study.tell(trial, state=state)


@contextlib.contextmanager
def _console_to(path: str):
  """The trial's console output (run line, one line per evaluation) and log lines
  (e.g. orbax's warnings) into its file; the tuner's console keeps one line per trial."""
  handler = absl_logging.get_absl_handler().python_handler
  with open(path, "a", encoding="utf-8") as f, contextlib.redirect_stdout(f), \
      contextlib.redirect_stderr(f):
    previous = handler.setStream(f)
    try:
      yield
    finally:
      handler.setStream(previous)
