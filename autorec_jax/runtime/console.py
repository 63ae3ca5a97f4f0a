"""What a run shows on the terminal: one progress bar, one short line per evaluation.

Everything else a run measures goes to metrics.jsonl and TensorBoard
(autorec_jax.training.metrics); absl's log keeps warnings and errors unless
`--verbosity=0` (or higher) asks for more. The bar is drawn only on a terminal, so a
run whose stderr is a file or a pipe writes no progress-bar noise into it.
"""

from __future__ import annotations

import logging as std_logging
import os
import sys
import threading

from absl import logging

# Library loggers whose INFO lines say nothing a user acts on: JAX's platform probing
# ("Unable to initialize backend 'tpu'") on every start, orbax's per-save chatter.
_QUIET_LOGGERS = ("jax._src.xla_bridge", "absl.orbax", "orbax")


# orbax warns on every mid-epoch checkpoint, which by design records no metric, and
# when a save waits for the one before it (the run decides how often it writes:
# ckpt.every_secs), neither of which a user can act on.
_ORBAX_NOISE = ("did not provide metrics", "Waiting for previous save to complete")


def _orbax_task_left_unretrieved(record) -> bool:
  """asyncio's report of an orbax read or write task whose error nobody awaited: when
  one array of a damaged checkpoint fails, the restore stops at that error (which the
  command reports in one line) and the other arrays' failures reach asyncio's logger
  with a traceback each, whenever their tasks are collected."""
  if record.name != "asyncio":
    return False
  message = str(record.msg)
  return "exception was never retrieved" in message and "/orbax/" in message


def _quiet_library_info(record) -> bool:
  if _orbax_task_left_unretrieved(record):
    return False
  if "/orbax/" in record.pathname and (
      any(n in str(record.msg) for n in _ORBAX_NOISE)
      # A failed save's errors, logged by orbax's threads, reach the caller as one
      # exception that the command reports in one line.
      or record.levelno >= logging.converter.ABSL_TO_STANDARD[logging.ERROR]):
    return False
  return record.levelno > logging.converter.ABSL_TO_STANDARD[logging.INFO] or (
      "/orbax/" not in record.pathname and "xla_bridge" not in record.pathname)


def quiet_library_logs() -> None:
  """Keeps the libraries' INFO chatter (JAX's platform probing, orbax's saves) out of
  the log; their warnings still show."""
  logging.get_absl_handler().addFilter(_quiet_library_info)
  for name in _QUIET_LOGGERS:
    std_logging.getLogger(name).setLevel(std_logging.WARNING)


def _is_shutdown_noise(exc_type, exc_value) -> bool:
  """The error orbax's I/O threads raise when a failed checkpoint write tears down their
  event loop; the write's own error reaches the command, which reports it."""
  return exc_type is RuntimeError and str(exc_value) == "Event loop is closed"


def quiet_background_errors() -> None:
  """Keeps the tracebacks of `_is_shutdown_noise` off the terminal (threads and
  unraisable exceptions alike); every other error prints as before."""
  thread_hook, unraisable_hook = threading.excepthook, sys.unraisablehook

  def on_thread_error(args):
    if not _is_shutdown_noise(args.exc_type, args.exc_value):
      thread_hook(args)

  def on_unraisable(args):
    if not _is_shutdown_noise(args.exc_type, args.exc_value):
      unraisable_hook(args)

  threading.excepthook = on_thread_error
  sys.unraisablehook = on_unraisable


def is_terminal(stream=None) -> bool:
  """Whether `stream` (stderr by default) is an interactive terminal."""
  stream = sys.stderr if stream is None else stream
  try:
    return stream.isatty()
  except (AttributeError, ValueError):
    return False


class Progress:
  """One progress bar for a whole run (steps over all epochs), or nothing.

  `enabled` False, or stderr not a terminal: no bar, and `line` prints plainly.
  """

  def __init__(self, *, total: int, done: int = 0, enabled: bool = True,
               desc: str = "training"):
    self._bar = None
    if enabled and is_terminal():
      from tqdm import tqdm  # pylint: disable=import-outside-toplevel
      self._bar = tqdm(total=total, initial=done, desc=desc, dynamic_ncols=True,
                       leave=False, file=sys.stderr)

  def update(self, steps: int = 1, **postfix) -> None:
    if self._bar is not None:
      if postfix:
        self._bar.set_postfix(**postfix, refresh=False)
      self._bar.update(steps)

  def line(self, text: str) -> None:
    """Prints `text` on stdout, above the bar when one is drawn."""
    if self._bar is not None:
      self._bar.write(text, file=sys.stdout)
    else:
      print(text, flush=True)

  def close(self) -> None:
    if self._bar is not None:
      self._bar.close()
      self._bar = None


def data_name(name: str, loaded) -> str:
  """How the run line names the data: `name` (data.name), or for csv data the files
  read (base names, the ratings file first, then a data.test_path file)."""
  if name != "csv":
    return name
  return ", ".join(os.path.basename(f) for f in loaded.files or (loaded.ratings.source,))


def run_line(name: str, data, *, orientation: str, hidden, num_params: int,
             input_path: str, resumed: int | None, units: str | None = None,
             mirrored: bool = True) -> str:
  """What a run trains: `movielens_1m: 6040 users x 3706 items, ratings 1..5 (as they
  are), train/valid/test 855179/45009/100021; item-based 6040-500-6040, 6,046,540
  parameters, sparse input` (`data` a RunData; `units`: how the model sees the
  ratings, e.g. `mapped onto 1..5`; None: not said). The decoder mirrors `hidden`
  unless `mirrored` is False (the kernel networks list every hidden layer)."""
  ratings, (lo, hi) = data.loaded.ratings, data.loaded.rating_scale
  width = ratings.num_items if orientation == "user" else ratings.num_users
  widths = [width, *hidden, *(hidden[-2::-1] if mirrored else ()), width]
  how = f" ({units})" if units else ""
  return (f"{name}: {ratings.num_users} users x {ratings.num_items} items, ratings "
          f"{lo:g}..{hi:g}{how}, train/valid/test {data.train.num_ratings}/"
          f"{data.valid.num_ratings}/{data.test.num_ratings}; {orientation}-based "
          f"{'-'.join(map(str, widths))}, {num_params:,} parameters, {input_path} input"
          + (f"; resumed from step {resumed}" if resumed is not None else ""))


def eval_line(*, epoch: int, num_epochs: int, loss: float | None, valid_rmse: float | None,
              best_rmse: float | None, best_epoch: int | None, seconds: float) -> str:
  """`epoch 3/60  loss 0.8123  valid RMSE 0.8890  best 0.8890 @3  1.2 s`."""
  parts = [f"epoch {epoch}/{num_epochs}"]
  if loss is not None:
    parts.append(f"loss {loss:.4f}")
  if valid_rmse is not None:
    parts.append(f"valid RMSE {valid_rmse:.4f}")
  if best_rmse is not None and best_epoch is not None:
    parts.append(f"best {best_rmse:.4f} @{best_epoch}")
  parts.append(f"{seconds:.1f} s")
  return "  ".join(parts)
