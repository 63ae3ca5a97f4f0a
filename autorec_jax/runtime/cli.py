"""What the command-line tools share: their flags, one-line errors, safe output files.

Flags. Each tool (`predict`, `recommend`, `export`, `report`) defines its flags on its
own `flags.FlagValues`, so importing several tools into one process (tests, notebooks)
never raises DuplicateFlagError over shared names like --workdir; absl's own flags
(--verbosity, --help, ...) still parse as usual:

  FLAGS = flags.FlagValues()
  WORKDIR = flags.DEFINE_string("workdir", None, "...", flag_values=FLAGS)

  @cli.one_line_errors
  def main(argv): ...

  app.run(main, flags_parser=cli.parser(FLAGS, required=("workdir",)))

Errors. `one_line_errors` turns every exception a tool's main raises into one line on
stderr, `error: ...`, and exit status 1 (a bad flag is caught earlier by `parser`:
exit 2); Ctrl-C gives `interrupted: ...` and 130. The exception's own message is used
where it already names what is wrong (DataError, ValueError, OSError with its path),
JSON and UTF-8 decoding errors are told as such, and anything else is reported with
its type. With the environment variable AUTOREC_DEBUG=1 the exception propagates, and
Python prints its traceback.

Output files. `check_output_file` refuses, before any work, an --output that exists
(unless --overwrite), is a folder, or lies under a file; `atomic_output` writes a file
under a temporary name in the same folder and renames it into place when complete,
so a failed or interrupted write leaves the previous file as it was.
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging as std_logging
import os
import re
import sys
import traceback
from typing import Callable, Iterator, Sequence

from absl import flags
from ml_collections import config_dict
# Imported for its flags (--verbosity, --logtostderr, ...), which every tool accepts.
from absl import logging as _absl_logging  # pylint: disable=unused-import

from autorec_jax.data.errors import DataError

DEBUG_ENV = "AUTOREC_DEBUG"
# The longest error line printed: a message listing data is cut here, so no error
# ever floods the terminal.
MAX_MESSAGE = 1000


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
      print(f"error: {one_line(str(e))}", file=sys.stderr)
      sys.exit(2)
    return rest

  return parse


HELP_FLAGS = ("--help", "-h", "-?", "--helpshort")


def print_help_if_asked(argv: Sequence[str], usage: str,
                        flag_values: flags.FlagValues) -> None:
  """With --help (or -h) in `argv`: prints `usage` and the tool's own flags, exits 0
  (absl's --help would list only its global flags, not a tool's FlagValues)."""
  if any(a in HELP_FLAGS for a in argv[1:]):
    with contextlib.suppress(BrokenPipeError):  # `--help | head`
      print(usage.rstrip() + "\n\nFlags:\n" + flag_values.get_help())
    sys.exit(0)


def config_error_line(error: BaseException, argv: Sequence[str] = ()) -> str:
  """The one line a --config flag's error (a typo'd field, a bad value, a missing
  file, an unknown variant, a config file that does not load) is told as:
  ml_collections wraps a config file's error in its traceback's text, and
  AttributeError(KeyError) quotes it. An override of a field that does not exist is
  named by its flag in `argv`; an error of the config file itself (invalid Python, a
  failed import, no get_config, get_config raising or returning something other than
  a ConfigDict) by the file."""
  path = config_file(argv)
  if isinstance(error, SyntaxError):  # IndentationError and TabError too
    where = error.filename or path
    if error.lineno:
      where += f":{error.lineno}"
    return f"{where}: the config file is not valid Python ({error.msg})"
  if isinstance(error, ImportError):
    return f"{path}: the config file's imports failed: {error}"
  missing = error.args[0] if isinstance(error, AttributeError) and error.args else None
  if isinstance(missing, KeyError) and missing.args:
    name = str(missing.args[0]).strip("'\"")  # ml_collections quotes it
    for arg in argv:
      flag = arg.split("=", 1)[0]
      if flag.startswith("--config.") and flag.rsplit(".", 1)[-1] == name:
        return f"{flag}: no such config field (every field is listed in docs/configs.md)"
  if not isinstance(error, (flags.Error, AttributeError, KeyError, TypeError, ValueError,
                            OSError)):
    return f"{path}: get_config failed: {type(error).__name__}: {one_line(str(error))}"
  text = str(error).replace("\\n", "\n").replace("\\'", "'")
  lines = [l.strip() for l in text.splitlines() if l.strip()]
  message = lines[-1] if "Traceback" in text or isinstance(error, OSError) else " ".join(lines)
  if len(message) > 1 and message[0] == message[-1] and message[0] in "'\"":
    message = message[1:-1]
  if _RAISED_BY_FILE in text and path:  # get_config raised TypeError or ValueError
    return f"{path}: {re.sub(r'^(TypeError|ValueError): ', '', message)}"
  unset = re.search(r"Flag (--\w+) " + _NONE_CONFIG, message)
  if unset and unset.group(1) == "--config" and path:
    return not_a_config_line(path, "None")
  if unset:
    return f"flag {unset.group(1)} must be given"
  message = message.removeprefix(_EARLIER_FAILURE)
  returned = re.search(r"Attribute <class '([\w.]+)'>\.", message)
  if returned:  # an override of a config that is not a ConfigDict
    return not_a_config_line(path, returned.group(1))
  if "has no attribute 'get_config'" in message:
    return f"{path}: expected a function get_config() in the config file"
  os_error = re.fullmatch(r"\[Errno \d+\] (.+?): '(.+)'", message)
  if os_error:
    return (f"{os_error.group(2)}: {os_error.group(1)} (expected a config file: "
            f"{CONFIG_USAGE})")
  if "get_config()" in message and path and path not in message:
    return f"{path}: {message}"
  return message


# ml_collections' text before the error of a config file that failed to load.
_EARLIER_FAILURE = "Configuration is not available because of an earlier failure to load: "
CONFIG_USAGE = "configs/NAME.py or configs/NAME.py:variant"
# ml_collections' text before the traceback of a TypeError or ValueError get_config
# raised, and absl's once get_config returned None.
_RAISED_BY_FILE = "Error whilst parsing config file"
_NONE_CONFIG = "must have a value other than None"


def config_file(argv: Sequence[str]) -> str:
  """The config file a --config flag in `argv` names (its variant left off), or ''."""
  for i, arg in enumerate(argv):
    value = None
    if arg.startswith("--config="):
      value = arg.split("=", 1)[1]
    elif arg == "--config" and i + 1 < len(argv):
      value = argv[i + 1]
    if value is not None:
      return value.split(":", 1)[0]
  return ""


def not_a_config_line(path: str, type_name: str) -> str:
  """The error line of a config file whose get_config returned a `type_name`."""
  return f"{path}: get_config() returned {type_name}, expected an ml_collections ConfigDict"


def parse_config_flags(parse: Callable[[], list[str]], config_flag,
                       argv: Sequence[str]) -> list[str]:
  """Runs `parse` (absl's flag parsing) and loads the --config file of `config_flag`
  (ml_collections loads it on first access); a bad flag, override or config file is
  one `error: ...` line on stderr and exit status 2 (a traceback with AUTOREC_DEBUG)."""
  absl_logger = std_logging.getLogger("absl")
  # ml_collections warns of a get_config that returned None; the error line says it.
  absl_logger.addFilter(_not_none_config_warning)
  try:
    rest = parse()
    value = config_flag.value
    load_error = getattr(value, "_error", None)  # ml_collections' stand-in for a file
    if isinstance(load_error, OSError):  # that could not be read: its error
      raise load_error
    if not isinstance(value, config_dict.ConfigDict):
      kind = "None" if value is None else type(value).__name__
      print(f"error: {not_a_config_line(config_file(argv), kind)}",
            file=sys.stderr)
      sys.exit(2)
    return rest
  except Exception as e:  # pylint: disable=broad-except
    if debugging():
      raise
    print(f"error: {one_line(config_error_line(e, argv))}", file=sys.stderr)
    sys.exit(2)
  finally:
    absl_logger.removeFilter(_not_none_config_warning)


def _not_none_config_warning(record) -> bool:
  return "get_config() returned None" not in record.getMessage()


def _not_orbax(record) -> bool:
  return "/orbax/" not in record.pathname.replace("\\", "/")


def _not_orbax_task(record) -> bool:
  """False for asyncio's report of an orbax read task whose exception nobody retrieved
  (a damaged checkpoint fails several reads at once; the first is reported)."""
  text = record.getMessage()
  if record.exc_info:
    text += "".join(traceback.format_exception(*record.exc_info))
  return "/orbax/" not in text.replace("\\", "/")


def _quiet_unraisable(unraisable) -> None:
  """Drops what a failed checkpoint read leaves behind: tensorstore callbacks firing
  into orbax's closed event loop, orbax read coroutines never awaited. Anything else
  goes to Python's default hook."""
  text = f"{unraisable.exc_value!r} {unraisable.object!r}"
  if "Event loop is closed" in text or "orbax" in text or "array index" in text:
    return
  sys.__unraisablehook__(unraisable)


def quiet_checkpoint_logs() -> None:
  """Keeps orbax's noise off stderr (unless AUTOREC_DEBUG is set): its log lines, and
  the tracebacks of its reads still in flight when a damaged checkpoint failed; the
  tool reports a damaged checkpoint in its own error line."""
  if debugging():
    return
  logger = std_logging.getLogger("absl")
  if _not_orbax not in logger.filters:
    logger.addFilter(_not_orbax)
  tasks = std_logging.getLogger("asyncio")
  if _not_orbax_task not in tasks.filters:
    tasks.addFilter(_not_orbax_task)
  sys.unraisablehook = _quiet_unraisable


def debugging() -> bool:
  """Whether AUTOREC_DEBUG asks for tracebacks instead of one-line errors."""
  return os.environ.get(DEBUG_ENV, "").strip().lower() not in ("", "0", "false", "no")


def one_line(text: str) -> str:
  """`text` on one line (its lines joined by spaces), at most MAX_MESSAGE characters."""
  text = " ".join(part.strip() for part in str(text).splitlines() if part.strip())
  if len(text) > MAX_MESSAGE:
    text = text[:MAX_MESSAGE - 5].rstrip() + " ..."
  return text


def describe(error: BaseException) -> str:
  """The one line an exception is reported as (without the `error: ` prefix)."""
  if isinstance(error, json.JSONDecodeError):
    text = (f"expected JSON, got invalid JSON at line {error.lineno} column {error.colno} "
            f"({error.msg})")
  elif isinstance(error, UnicodeDecodeError):
    text = (f"expected UTF-8 text, got the byte 0x{error.object[error.start]:02x} at byte "
            f"offset {error.start}")
  elif isinstance(error, DataError):
    text = str(error)
  elif isinstance(error, OSError) and error.filename is not None:
    where = str(error.filename)
    if error.filename2 is not None:
      where += f" -> {error.filename2}"
    text = f"{where}: {error.strerror or error}"
  elif isinstance(error, (ValueError, OSError)) and str(error):
    text = str(error)
  elif isinstance(error, MemoryError):
    text = "out of memory"
  else:
    text = (f"unexpected {type(error).__name__}: {error} (set {DEBUG_ENV}=1 to see the "
            "traceback)")
  return one_line(text)


def one_line_errors(main: Callable[[list[str]], int | None]) -> Callable[[list[str]], int]:
  """Wraps a tool's main: an exception becomes one `error: ...` line and exit status 1,
  Ctrl-C `interrupted: ...` and 130; with AUTOREC_DEBUG=1 exceptions propagate."""

  @functools.wraps(main)
  def guarded(argv):
    try:
      return main(argv)
    except KeyboardInterrupt:
      if debugging():
        raise
      print("interrupted: stopped by Ctrl-C; no output file was changed", file=sys.stderr)
      return 130
    except Exception as e:  # pylint: disable=broad-except
      if debugging():
        raise
      print(f"error: {describe(e)}", file=sys.stderr)
      return 1

  return guarded


def check_output_file(path: str, *, overwrite: bool, flag: str = "--output") -> None:
  """Refuses (ValueError, FileExistsError) an output file path that cannot or must not
  be written: empty, a folder, under a file, or an existing file without `overwrite`."""
  if not path:
    raise ValueError(f"{flag} is empty; expected a file path")
  if os.path.isdir(path):
    raise ValueError(f"{flag}={path}: is a folder; expected a file path")
  _check_parents(path, flag)
  if os.path.lexists(path) and not overwrite:
    raise FileExistsError(f"{path}: exists; pass --overwrite to replace it")


def check_output_dir(path: str, names: Sequence[str], *, overwrite: bool,
                     flag: str = "--output", hint: str = "pass --overwrite") -> None:
  """Refuses an output folder that is a file or lies under one, or that holds one of
  `names` (files this tool writes) unless `overwrite`."""
  if not path:
    raise ValueError(f"{flag} is empty; expected a folder")
  if os.path.lexists(path) and not os.path.isdir(path):
    raise ValueError(f"{flag}={path}: is a file; expected a folder")
  _check_parents(path, flag)
  present = [n for n in names if os.path.lexists(os.path.join(path, n))]
  if present and not overwrite:
    raise FileExistsError(f"{path}: holds {', '.join(present)} already; {hint} to "
                          "replace them")


def _check_parents(path: str, flag: str) -> None:
  """The nearest existing folder above `path` must be a writable folder."""
  parent = os.path.dirname(os.path.abspath(path))
  while not os.path.lexists(parent) and os.path.dirname(parent) != parent:
    parent = os.path.dirname(parent)
  if not os.path.isdir(parent):
    raise ValueError(f"{flag}={path}: {parent} is a file, not a folder")
  if not os.access(parent, os.W_OK | os.X_OK):
    raise PermissionError(f"{flag}={path}: cannot write into {parent} (permission denied)")


class OutputError(OSError):
  """An output file that could not be written; `filename` is the file's own path."""


@contextlib.contextmanager
def atomic_output(path: str, mode: str = "w", **open_kwargs) -> Iterator:
  """Opens a temporary file next to `path` for writing; renames it to `path` when the
  block completes, and removes it when the block raises. Missing parent folders are
  made. An OSError names `path` (not the temporary name)."""
  parent = os.path.dirname(os.path.abspath(path))
  tmp = os.path.join(parent, f".{os.path.basename(path)}.tmp-{os.getpid()}")
  try:
    os.makedirs(parent, exist_ok=True)
    with open(tmp, mode, **open_kwargs) as f:
      yield f
    os.replace(tmp, path)
  except OutputError:  # another output's failure, already told
    _remove(tmp)
    raise
  except OSError as e:
    _remove(tmp)
    raise OutputError(e.errno, f"cannot write it: {e.strerror or e}", path) from e
  except BaseException:
    _remove(tmp)
    raise


def _remove(path: str) -> None:
  with contextlib.suppress(OSError):
    os.remove(path)
