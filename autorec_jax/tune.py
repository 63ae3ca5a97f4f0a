r"""Tunes a config's hyperparameters on its validation part within a wall-time budget.

  python -m autorec_jax.tune --config=configs/movielens_1m.py --workdir=runs/tune_ml1m \
      --budget=10m [--trials=N] [--config.model.orientation=item ...]

Samples the search space of the config's model kind (docs/tuning.md) with Optuna's
TPE sampler; the first trial is the config as given. Each trial is a normal training
run in WORKDIR/trials/NNNN/ (with a config.py that trains it again with
`python -m autorec_jax.main --config=WORKDIR/trials/NNNN/config.py --workdir=DIR`);
trials whose validation RMSE is worse than the median at the same epoch are pruned.
When the budget is spent no trial is started and a running one is stopped after its
next evaluation. The winner is the completed trial with the best validation RMSE; its
test RMSE is the one its run measured at the end on its best-by-validation checkpoint
(test never takes part in the choice). Writes trials.csv, trials.md, trials.png,
best_config.json, best_config.py and results.json, and prints the trials table.

A `--config.group.field=value` override fixes that field: it is left out of the search.
Running the same command again continues the study: the budget counts the time its
finished trials already took (raise --budget to search longer). A workdir holding a
study of another config or other overrides is refused; --overwrite deletes it.
Needs Optuna: `pip install 'autorec_jax[tune]'`.
"""

from __future__ import annotations

import signal
import sys


if __name__ == "__main__":  # before the slow imports: Ctrl-C there is one line too
  from autorec_jax.runtime import signals as _early_signals
  _early_signals.exit_at_once_on_signals("run the same command to continue the study")

# pylint: disable=wrong-import-position
from absl import app, flags, logging
from ml_collections import config_flags

from autorec_jax.runtime import cli

# pylint: enable=wrong-import-position

FLAGS = flags.FlagValues()
_CONFIG = config_flags.DEFINE_config_file(
    "config", None, "Config file, optionally with a variant: configs/x.py[:variant]; "
    "--config.group.field=value fixes a field (left out of the search).",
    lock_config=True, flag_values=FLAGS)
_WORKDIR = flags.DEFINE_string("workdir", None, "Directory of the study: its storage, one "
                               "folder per trial, the tables and results.", flag_values=FLAGS)
_BUDGET = flags.DEFINE_string(
    "budget", None, "Wall time of the search, e.g. 90s, 10m, 1h or 1h30m, counted over "
    "every run of the same command on this workdir.", flag_values=FLAGS)
_TRIALS = flags.DEFINE_integer("trials", None, "Stop once the study holds this many trials "
                               "(with or without --budget).", lower_bound=1, flag_values=FLAGS)
_SEED = flags.DEFINE_integer("seed", 0, "Seed of the TPE sampler (the trials' own seed is "
                             "the config's).", lower_bound=0, flag_values=FLAGS)
_STARTUP = flags.DEFINE_integer("startup_trials", 5, "Trials sampled at random before TPE "
                                "models the results.", lower_bound=0, flag_values=FLAGS)
_PRUNE = flags.DEFINE_bool("prune", True, "Stop a trial whose validation RMSE is worse than "
                           "the median of earlier trials at the same epoch.", flag_values=FLAGS)
_PRUNE_STARTUP = flags.DEFINE_integer("prune_startup", 3, "Finished trials before any trial "
                                      "is pruned.", lower_bound=0, flag_values=FLAGS)
_PRUNE_WARMUP = flags.DEFINE_integer("prune_warmup", 5, "Evaluations (epochs) a trial always "
                                     "gets before it may be pruned.", lower_bound=0,
                                     flag_values=FLAGS)
_START = flags.DEFINE_bool("start_from_config", True, "Make the study's first trial the "
                           "config as given.", flag_values=FLAGS)
_OVERWRITE = flags.DEFINE_bool("overwrite", False, "Delete a previous study in --workdir "
                               "instead of continuing it.", flag_values=FLAGS)

MISSING_OPTUNA = ("the tuner needs Optuna, which is not installed: pip install "
                  "'autorec_jax[tune]' (or pip install optuna)")


@cli.one_line_errors
def main(argv):
  if len(argv) > 1:
    raise ValueError(f"unexpected arguments: {' '.join(argv[1:])}")
  from autorec_jax.tuning.budget import parse_duration  # pylint: disable=import-outside-toplevel
  budget_s = None if _BUDGET.value is None else parse_duration(_BUDGET.value)
  if budget_s is None and _TRIALS.value is None:
    raise ValueError("give --budget (e.g. --budget=10m) or --trials, or both")
  try:
    import optuna  # pylint: disable=import-outside-toplevel
  except ImportError:
    print(f"error: {MISSING_OPTUNA}", file=sys.stderr)
    return 1
  # pylint: disable=import-outside-toplevel
  from autorec_jax.artifacts.checkpoint import DamagedCheckpoint
  from autorec_jax.runtime import console, signals
  from autorec_jax.training import fast_path
  from autorec_jax.tuning import study as study_lib
  # pylint: enable=import-outside-toplevel
  fast_path.tune_malloc()  # before JAX's threads start allocating
  console.quiet_library_logs()
  console.quiet_background_errors()
  if not flags.FLAGS["verbosity"].present:
    logging.set_verbosity(logging.WARNING)
  optuna.logging.set_verbosity(optuna.logging.WARNING)
  settings = study_lib.Settings(
      budget_s=budget_s, max_trials=_TRIALS.value, seed=_SEED.value,
      startup_trials=_STARTUP.value, prune=_PRUNE.value, prune_startup=_PRUNE_STARTUP.value,
      prune_warmup=_PRUNE_WARMUP.value, start_from_config=_START.value)
  fixed = sorted(config_flags.get_override_values(FLAGS["config"]))
  if _OVERWRITE.value:
    study_lib.clear(_WORKDIR.value)
  try:
    study_lib.tune(_CONFIG.value, _WORKDIR.value, settings, fixed=fixed,
                   log=lambda line: print(line, flush=True))
  except signals.Interrupted as e:  # inside a trial, whose loop saved a checkpoint
    print(f"interrupted: stopped by {signal.Signals(e.signum).name} during a trial; run the "
          "same command to continue the study (a new trial replaces that one)",
          file=sys.stderr)
    return 128 + e.signum
  except DamagedCheckpoint as e:
    print(f"error: {cli.one_line(str(e))}", file=sys.stderr)
    return 1
  return 0


def _parse_flags(argv):
  """The tuner's flags, then absl's; a bad flag or config is one line and exit 2."""
  cli.print_help_if_asked(argv, __doc__, FLAGS)

  def parse():
    rest = flags.FLAGS(FLAGS(argv, known_only=True))
    for name in ("config", "workdir"):
      if FLAGS[name].value is None:
        raise flags.Error(f"flag --{name} must be given")
    return rest

  return cli.parse_config_flags(parse, _CONFIG, argv)


if __name__ == "__main__":
  app.run(main, flags_parser=_parse_flags)
