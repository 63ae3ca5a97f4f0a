r"""Writes a trained run's model as a portable jax.export file (see portable.py).

  python -m autorec_jax.serving.export --workdir=runs/movielens_1m_user [--output=DIR]

writes DIR/model.jax and DIR/model.json (default DIR: WORKDIR/export).
"""

from __future__ import annotations

import os
import sys

from absl import app, flags

from autorec_jax.data.errors import DataError
from autorec_jax.runtime import cli, console
from autorec_jax.serving import api
from autorec_jax.serving.portable import (EXPORT_DIR, META_FILE, MODEL_FILE, export,

                                          load_exported)

__all__ = ["EXPORT_DIR", "META_FILE", "MODEL_FILE", "export", "load_exported", "main"]

FLAGS = flags.FlagValues()
_WORKDIR = flags.DEFINE_string("workdir", None, "A trained run's workdir.", flag_values=FLAGS)
_CHECKPOINT = flags.DEFINE_string("checkpoint", "best",
                                  "best, latest, or a checkpoint's step number.",
                                  flag_values=FLAGS)
_OUTPUT = flags.DEFINE_string("output", None, "Directory to write (default WORKDIR/export).",
                              flag_values=FLAGS)


def main(argv):
  del argv
  console.quiet_library_logs()
  try:
    model = api.load(_WORKDIR.value, _CHECKPOINT.value)
  except (DataError, FileNotFoundError, ValueError) as e:
    print(f"error: {e}", file=sys.stderr)
    return 1
  path = export(model, _OUTPUT.value)
  print(f"wrote {path} and {os.path.join(os.path.dirname(path), META_FILE)} "
        f"(checkpoint of step {model.predictor.step}, epoch {model.predictor.epoch})")
  return 0


if __name__ == "__main__":
  app.run(main, flags_parser=cli.parser(FLAGS, required=("workdir",)))
