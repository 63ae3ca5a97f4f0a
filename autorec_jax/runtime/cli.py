"""Flags of the command-line tools kept out of absl's global FLAGS.

Each tool (`recommend`, `export`, `report`) defines its flags on its own
`flags.FlagValues`, so importing several tools into one process (tests, notebooks)
never raises DuplicateFlagError over shared names like --workdir; absl's own flags
(--verbosity, --help, ...) still parse as usual:

  FLAGS = flags.FlagValues()
  WORKDIR = flags.DEFINE_string("workdir", None, "...", flag_values=FLAGS)
  app.run(main, flags_parser=cli.parser(FLAGS, required=("workdir",)))
"""

from __future__ import annotations

import sys
from typing import Callable, Sequence

from absl import flags


def parser(flag_values: flags.FlagValues, required: Sequence[str] = ()
           ) -> Callable[[list[str]], list[str]]:
  """An app.run flags_parser: the tool's flags first, the rest to absl's FLAGS."""

  def parse(argv: list[str]) -> list[str]:
    try:
      rest = flags.FLAGS(flag_values(argv, known_only=True))
      for name in required:
        if flag_values[name].value is None:
          raise flags.Error(f"flag --{name} must be given")
    except flags.Error as e:
      print(f"error: {e}", file=sys.stderr)
      sys.exit(2)
    return rest

  return parse
