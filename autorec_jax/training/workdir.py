"""A run's workdir as training sees it: one run at a time, only our own files touched.

`open_run(cfg, workdir)` (every trainer enters it) makes sure the folder can hold the
run (a folder, writable), locks it for this process (a second command on the same
workdir is refused while the first runs: it would delete the first's checkpoints),
refuses a folder holding files of the names a run writes that are not a run's, and
refuses to resume a run of another config. `clear_workdir` (`--overwrite`) deletes a
previous run's files and nothing else, and only from a folder that holds a run.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import shutil
import threading

from autorec_jax.artifacts.run_config import config_json, flatten
from autorec_jax.config import checks as config_checks
from autorec_jax.config.schema import base_config

RUN_FILES = ("checkpoints", "metrics.jsonl", "results.json", "config.json", "tensorboard",
             "data.npz", "data_files.json")
LOCK_FILE = ".lock"
# Fields that may differ when a run is resumed: more epochs extend a finished run, a
# different patience moves its stopping point; how often it checkpoints and ranks
# changes no result.
RESUMABLE_CHANGES = ("train.num_epochs", "train.patience", "ckpt.every_secs",
                     "eval.ranking_every_epochs")


class WorkdirError(ValueError):
  """The workdir cannot hold this run (the message names the path and why)."""


_held: dict[str, int] = {}  # workdir -> how many open_run of this process hold it
_held_lock = threading.Lock()
_lock_files: dict[str, object] = {}


def _read_config(path: str) -> dict:
  try:
    with open(path, encoding="utf-8") as f:
      saved = json.load(f)
  except json.JSONDecodeError as e:
    raise WorkdirError(f"{path}: not valid JSON (line {e.lineno}, column {e.colno}); "
                       "restore it, or pass --overwrite to start afresh") from e
  if not isinstance(saved, dict):
    raise WorkdirError(f"{path}: expected a JSON object (the run's config), got "
                       f"{type(saved).__name__}; restore it, or pass --overwrite to start "
                       "afresh")
  return saved


def _json_keys(path: str) -> set | None:
  """The top-level keys of a JSON object file; None when it is no such file; an empty
  set when it cannot be read or parsed (a damaged file of ours is still ours)."""
  if not os.path.isfile(path):
    return None
  try:
    with open(path, encoding="utf-8") as f:
      saved = json.load(f)
  except (OSError, ValueError):
    return set()
  return set(saved) if isinstance(saved, dict) else None


def is_run(workdir: str) -> bool:
  """Whether `workdir` holds a run of this toolkit: a config.json of ours, or, should
  that be gone, the data record or a checkpoint a run writes."""
  config = _json_keys(os.path.join(workdir, "config.json"))
  if config is not None and (not config or {"data", "model", "train"} <= config):
    return True
  record = _json_keys(os.path.join(workdir, "data_files.json"))
  if record is not None and (not record or record == {"files"}):
    return True
  ckpt = os.path.join(workdir, "checkpoints")
  return os.path.isdir(ckpt) and any(
      n.isdigit() and os.path.isdir(os.path.join(ckpt, n, "meta")) or n == "best.npz"
      for n in os.listdir(ckpt))


def has_training(workdir: str) -> bool:
  """Whether a run in `workdir` has trained anything (checkpoints or results)."""
  return (_has_checkpoint(os.path.join(workdir, "checkpoints"))
          or os.path.exists(os.path.join(workdir, "results.json")))


def _has_checkpoint(ckpt: str) -> bool:
  """Whether the checkpoint folder `ckpt` holds a step or the best factors."""
  return os.path.isdir(ckpt) and any(n.isdigit() or n == "best.npz"
                                     for n in os.listdir(ckpt))


def _check_folder(workdir: str) -> None:
  """Creates `workdir`, or says in one line why it cannot be a run's folder."""
  if os.path.exists(workdir) and not os.path.isdir(workdir):
    raise WorkdirError(f"{workdir}: a file, not a folder; pass another --workdir")
  try:
    os.makedirs(workdir, exist_ok=True)
  except OSError as e:
    why = {errno.ENOTDIR: "a part of the path is a file, not a folder",
           errno.EACCES: "permission denied", errno.EROFS: "read-only file system",
           errno.ENOSPC: "no space left on the device"}.get(e.errno, e.strerror)
    raise WorkdirError(f"{workdir}: cannot create the folder ({why})") from e
  if not os.access(workdir, os.W_OK | os.X_OK):
    raise WorkdirError(f"{workdir}: not writable; pass another --workdir")


def _check_ours(workdir: str) -> None:
  """Refuses a folder that holds files of the names a run writes but is no run."""
  if is_run(workdir):
    return
  theirs = [n for n in RUN_FILES if os.path.exists(os.path.join(workdir, n))]
  if theirs:
    raise WorkdirError(f"{workdir} is not a run of autorec_jax but holds {', '.join(theirs)}"
                       "; a run would write over them: pass another --workdir")


@contextlib.contextmanager
def locked(workdir: str):
  """Holds `workdir`'s lock (an flock on workdir/.lock) for this process; another
  process asking for it meanwhile gets WorkdirError. Re-entrant within a process."""
  key = os.path.realpath(workdir)
  with _held_lock:
    if _held.get(key):
      _held[key] += 1
      first = False
    else:
      first = True
  if first:
    path = os.path.join(workdir, LOCK_FILE)
    f = open(path, "a+", encoding="utf-8")  # pylint: disable=consider-using-with
    try:
      fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as e:
      f.seek(0)
      pid = f.read().strip() or "?"
      f.close()
      raise WorkdirError(f"{workdir} is in use by another run (process {pid}); wait for it "
                         "to finish or pass another --workdir") from e
    f.seek(0)
    f.truncate()
    f.write(f"{os.getpid()}\n")
    f.flush()
    with _held_lock:
      _held[key] = 1
      _lock_files[key] = f
  try:
    yield
  finally:
    with _held_lock:
      _held[key] -= 1
      release = _held[key] == 0
      f = _lock_files.pop(key) if release else None
    if f is not None:
      fcntl.flock(f, fcntl.LOCK_UN)
      f.close()


@contextlib.contextmanager
def open_run(cfg, workdir: str, *, process_index: int = 0):
  """Checks `workdir` can hold the run of `cfg` and holds its lock meanwhile (process
  0; the other processes of a multi-host run share its folder)."""
  _check_folder(workdir)
  with locked(workdir) if process_index == 0 else contextlib.nullcontext():
    _check_ours(workdir)
    check_workdir(cfg, workdir)
    yield


def clear_workdir(workdir: str) -> None:
  """Deletes a previous run's files from `workdir` (nothing else in it, and nothing
  at all from a folder that holds no run: WorkdirError names what is there)."""
  if not os.path.isdir(workdir):
    return
  _check_ours(workdir)
  if not is_run(workdir):
    return
  with locked(workdir):
    for name in RUN_FILES:
      path = os.path.join(workdir, name)
      if os.path.isdir(path):
        shutil.rmtree(path)
      elif os.path.exists(path):
        os.remove(path)


def config_differences(saved: dict, cfg) -> list[str]:
  """The dotted fields in which `cfg` differs from a saved config (a field the saved
  config lacks, added by a later version, counts as its default), beyond those a
  resumed run may change."""
  old = {**flatten(json.loads(config_json(base_config()))), **flatten(saved)}
  new = flatten(json.loads(config_json(cfg)))
  return sorted(k for k in old.keys() | new.keys()
                if old.get(k) != new.get(k) and k not in RESUMABLE_CHANGES)


def refuse_other_config(workdir: str, saved: dict, cfg, where: str) -> None:
  """ConfigError when `cfg` is not the config `saved` (read from `where`)."""
  diff = config_differences(saved, cfg)
  if diff:
    raise config_checks.ConfigError(
        f"{workdir} holds a run with a different config ({', '.join(diff[:8])} differ, "
        f"per {where}); pass the same config to resume it, use another --workdir, or "
        "--overwrite to delete that run")


def check_workdir(cfg, workdir: str) -> None:
  """Refuses to resume a workdir whose run was trained with a different config, and
  a finished run (results.json) whose checkpoints are gone or replaced by a file,
  which resuming would train again from scratch over its results.

  Only a run that trained something counts: a config.json left by a start that
  failed before training (bad data, say) is replaced by the next command's.
  """
  ckpt = os.path.join(workdir, "checkpoints")
  if os.path.lexists(ckpt) and not os.path.isdir(ckpt):
    raise WorkdirError(f"{ckpt}: a file, not the run's checkpoint folder; move it away, "
                       "or pass --overwrite to start afresh")
  path = os.path.join(workdir, "config.json")
  if os.path.exists(path) and has_training(workdir):
    refuse_other_config(workdir, _read_config(path), cfg, "its config.json")
  stacked = bool(cfg.get("stacked", {}).get("enabled", False))  # stages keep theirs
  if (not stacked and os.path.exists(os.path.join(workdir, "results.json"))
      and not _has_checkpoint(ckpt)):
    # A finished run whose checkpoints are gone: resuming would train it again from
    # scratch over its metrics and results.
    raise WorkdirError(f"{workdir} holds a finished run (results.json) without its "
                       "checkpoints; pass --overwrite to train it again, or another "
                       "--workdir")
