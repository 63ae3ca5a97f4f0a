r"""Writes a trained run's model as a portable jax.export file (see portable.py).

  python -m autorec_jax.serving.export --workdir=runs/movielens_1m_user [--output=DIR]

writes DIR/model.jax and DIR/model.json (default DIR: WORKDIR/export). A DIR holding
either already is refused unless --overwrite.
"""

from __future__ import annotations

import os

from absl import app, flags

from autorec_jax.artifacts.run_config import load_config
from autorec_jax.runtime import cli, console
from autorec_jax.serving import api
from autorec_jax.serving.portable import (EXPORT_DIR, META_FILE, MODEL_FILE, export,
                                          load_exported)
from autorec_jax.serving.predict import parse_checkpoint

__all__ = ["EXPORT_DIR", "META_FILE", "MODEL_FILE", "export", "load_exported", "main"]

FLAGS = flags.FlagValues()
_WORKDIR = flags.DEFINE_string("workdir", None, "A trained run's workdir.", flag_values=FLAGS)
_CHECKPOINT = flags.DEFINE_string("checkpoint", "best",
                                  "best, latest, or a checkpoint's step number.",
                                  flag_values=FLAGS)
_OUTPUT = flags.DEFINE_string("output", None, "Directory to write (default WORKDIR/export).",
                              flag_values=FLAGS)
_OVERWRITE = flags.DEFINE_bool("overwrite", False, "Replace the model.jax and model.json an "
                               "earlier export left in the directory.", flag_values=FLAGS)


@cli.one_line_errors
def main(argv):
  del argv
  console.quiet_library_logs()
  cli.quiet_checkpoint_logs()
  which = parse_checkpoint(_CHECKPOINT.value, "--checkpoint")
  directory = _OUTPUT.value
  if directory is None:
    load_config(_WORKDIR.value)  # a missing workdir is told as such, not as --output's
    directory = os.path.join(_WORKDIR.value, EXPORT_DIR)
  cli.check_output_dir(directory, (MODEL_FILE, META_FILE), overwrite=_OVERWRITE.value)
  model = api.load(_WORKDIR.value, which)
  path = export(model, directory, overwrite=_OVERWRITE.value)
  print(f"wrote {path} and {os.path.join(os.path.dirname(path), META_FILE)} "
        f"(checkpoint of step {model.predictor.step}, epoch {model.predictor.epoch})")
  return 0


if __name__ == "__main__":
  app.run(main, flags_parser=cli.parser(FLAGS, required=("workdir",)))
