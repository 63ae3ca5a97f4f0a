r"""Trains and evaluates the model a config file names.

  python -m autorec_jax.main --config=configs/movielens_1m.py --workdir=runs/ml1m \
      [--config.model.hidden='(512,512,1024)' --config.train.refeed_steps=1 ...]

Writes to the workdir: config.json, metrics.jsonl, tensorboard/, checkpoints/ (best
and latest) and results.json, and prints the test RMSE and MAE of the best-by-
validation checkpoint. Running the same command again resumes from the latest
checkpoint. Multi-host: start the same command on every host with
--coordinator_address, --num_processes and --process_id (JAX's own runtime).

Config fields: docs/configs.md lists every field with its type, default and allowed
values (the same text is the comment beside each field in
autorec_jax/config/schema.py); ready-made configs are the files in configs/, whose
docstrings list their variants (configs/movielens_1m.py:tiny is a seconds-long run).
"""

from __future__ import annotations

import os
import sys


if __name__ == "__main__":  # before the slow imports: Ctrl-C there is one line too
  from autorec_jax.runtime import signals as _early_signals
  _early_signals.exit_at_once_on_signals(
      "run the same command to resume from the last checkpoint")

# pylint: disable=wrong-import-position
import jax
from absl import app, flags, logging
from ml_collections import config_flags

from autorec_jax.artifacts.checkpoint import DamagedCheckpoint
from autorec_jax.config import checks as config_checks
from autorec_jax.data.errors import DataError
from autorec_jax.runtime import cli, console, parallel, signals
from autorec_jax.training import fast_path, metrics, registry
from autorec_jax.training import workdir as workdir_lib

# pylint: enable=wrong-import-position

_CONFIG = config_flags.DEFINE_config_file(
    "config", None, "Config file, optionally with a variant: configs/x.py[:variant] "
    "(the ready-made ones are the files in configs/); override fields with "
    "--config.group.field=value (every field, its default and allowed values are "
    "documented in docs/configs.md).", lock_config=True)
_WORKDIR = flags.DEFINE_string("workdir", None, "Directory for checkpoints and results.")
_OVERWRITE = flags.DEFINE_bool(
    "overwrite", False, "Delete a previous run's checkpoints and results in --workdir "
    "instead of resuming it.")
_COORDINATOR = flags.DEFINE_string(
    "coordinator_address", None, "host:port of process 0 for multi-host training.")
_NUM_PROCESSES = flags.DEFINE_integer("num_processes", None, "Processes in a multi-host run.")
_PROCESS_ID = flags.DEFINE_integer("process_id", None, "This process's index.")
flags.mark_flags_as_required(["config", "workdir"])


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  fast_path.tune_malloc()  # before JAX's threads start allocating
  console.quiet_library_logs()
  console.quiet_background_errors()
  if not flags.FLAGS["verbosity"].present:  # the console shows progress and results
    logging.set_verbosity(logging.WARNING)
  # Must precede every other JAX call (importing JAX is fine, computing is not).
  parallel.maybe_initialize_distributed(_COORDINATOR.value, _NUM_PROCESSES.value,
                                        _PROCESS_ID.value)

  logging.info("process %d of %d, %d local / %d global devices (%s)", jax.process_index(),
               jax.process_count(), jax.local_device_count(), jax.device_count(),
               jax.devices()[0].platform)
  cfg = _CONFIG.value
  try:
    if _OVERWRITE.value and jax.process_index() == 0:
      workdir_lib.clear_workdir(_WORKDIR.value)
    results = registry.select(cfg)(cfg, _WORKDIR.value)
  except (DataError, config_checks.ConfigError, workdir_lib.WorkdirError, FloatingPointError,
          DamagedCheckpoint) as e:
    print(f"error: {e}", file=sys.stderr)
    return 1
  except OSError as e:  # the workdir's file system: full, read-only, gone
    where = f"{e.filename}: " if e.filename else ""
    print(f"error: {where}{e.strerror or e}", file=sys.stderr)
    # A failed checkpoint write leaves orbax's I/O threads behind, whose callbacks
    # would print tracebacks while the interpreter shuts down: leave at once.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(1)  # pylint: disable=protected-access
  except signals.Interrupted as e:
    print(f"interrupted: {e}", file=sys.stderr)
    return 128 + e.signum
  if jax.process_index() == 0:
    print(metrics.summary_line(results))
  return 0


def _parse_flags(argv):
  """absl's flag parsing plus loading the config; a bad flag, override or config file
  is one line and exit 2 (cli.parse_config_flags)."""
  return cli.parse_config_flags(lambda: flags.FLAGS(argv), _CONFIG, argv)


if __name__ == "__main__":
  app.run(main, flags_parser=_parse_flags)
