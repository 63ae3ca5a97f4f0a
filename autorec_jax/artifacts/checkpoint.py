"""Orbax checkpoints: keep the best-by-validation and the latest, resume from latest.

Checkpoints are numbered by global train step. Each holds the train state and a JSON
`meta` item (where in training it was taken: completed epochs, batches into the next
one, and the epoch's metrics at an epoch end), so a run can be resumed or evaluated
from its workdir alone. Orbax writes into a temporary directory and renames it when
complete, so a run killed mid-save leaves the previous checkpoints intact.
"""

from __future__ import annotations

import json
import os
import re
import sys
import zlib
from typing import Any

import jax
import numpy as np
import orbax.checkpoint as ocp
from absl import logging
from orbax.checkpoint import checkpoint_managers as cm

from autorec_jax.data.errors import DataError
from autorec_jax.models.autoencoder import output_kernel_paths
from autorec_jax.runtime import faults

BEST_METRIC = "valid/rmse"
# The parameter layout a checkpoint's `meta` records: 2 stores an autoencoder's output
# kernel (`dec{L-1}_kernel`) items-major, [n, w]; checkpoints without the key were
# written with it [w, n] (layout 1) and are transposed on restore.
PARAM_LAYOUT = 2
_LAYOUT_KEY = "param_layout"
_DIGEST_KEY = "state_crc32"


class DamagedCheckpoint(Exception):
  """A checkpoint's files cannot be restored as saved (the message says which)."""


def _metric(metrics: dict[str, float]) -> float:
  return metrics[BEST_METRIC]


def make_manager(workdir: str, *, keep_best: bool = True) -> ocp.CheckpointManager:
  """A manager under `workdir/checkpoints` keeping the best (lowest valid/rmse) and latest.

  With keep_best False (no validation set) only the latest is kept, and it doubles as
  the best.
  """
  policies = [cm.LatestN(n=1)]
  if keep_best:
    policies.append(cm.BestN(get_metric_fn=_metric, reverse=True, n=1,
                             keep_checkpoints_without_metrics=False))
  options = ocp.CheckpointManagerOptions(
      best_fn=_metric if keep_best else None, best_mode="min",
      preservation_policy=cm.AnyPreservationPolicy(policies),
      enable_async_checkpointing=True)
  directory = os.path.abspath(os.path.join(workdir, "checkpoints"))
  return ocp.CheckpointManager(directory, options=options, item_names=("state", "meta"))


def save(manager: ocp.CheckpointManager, step: int, state: Any, meta: dict,
         metrics: dict[str, float] | None) -> None:
  """Saves `state` and `meta` as checkpoint `step` and waits until it is committed.

  A step that is already saved (a resumed run re-saving where it stopped) is skipped.
  """
  if step in manager.all_steps():
    return
  clean = None if metrics is None else {k: float(v) for k, v in metrics.items()}
  meta = {**meta, _LAYOUT_KEY: PARAM_LAYOUT, _DIGEST_KEY: digest(state)}
  try:
    manager.save(step, args=ocp.args.Composite(state=ocp.args.StandardSave(state),
                                               meta=ocp.args.JsonSave(meta)),
                 metrics=clean)
    faults.reached("checkpoint_save")
    manager.wait_until_finished()
  except (OSError, ValueError, RuntimeError) as e:  # tensorstore's errors are ValueErrors
    raise _write_error(manager, step, e) from e


def _write_error(manager: ocp.CheckpointManager, step: int, error: Exception) -> OSError:
  """One OSError naming the checkpoint folder and the cause of a failed save (the
  operating system's error where tensorstore reports one: a full disk, say)."""
  text = str(error)
  code = re.search(r"os_error_code='(\d+)'", text)
  if isinstance(error, OSError) and error.errno:
    errno_, why = error.errno, error.strerror
  elif code:
    errno_, why = int(code.group(1)), os.strerror(int(code.group(1)))
  else:
    errno_, why = None, " ".join(text.split())[:200]
  return OSError(errno_, f"{why} (saving checkpoint {step}; the earlier ones are intact)",
                 os.fspath(manager.directory))


def restore(manager: ocp.CheckpointManager, step: int, like: Any) -> tuple[Any, dict]:
  """Restores checkpoint `step` into the structure, dtypes and shardings of `like`
  (a checkpoint of parameter layout 1 has its output kernels transposed)."""
  meta = manager.restore(step, args=ocp.args.Composite(meta=ocp.args.JsonRestore()))["meta"]
  flip = set()
  if meta.get(_LAYOUT_KEY, 1) < PARAM_LAYOUT:
    flip = output_kernel_paths(like)

  def abstract(path, x):
    spec = ocp.utils.to_shape_dtype_struct(x)
    if path in flip:
      return jax.ShapeDtypeStruct(spec.shape[::-1], spec.dtype, sharding=spec.sharding)
    return spec

  out = manager.restore(step, args=ocp.args.Composite(
      state=ocp.args.StandardRestore(jax.tree_util.tree_map_with_path(abstract, like))))
  if _DIGEST_KEY in meta and digest(out["state"]) != meta[_DIGEST_KEY]:
    raise DamagedCheckpoint(f"checkpoint {step}: its arrays do not match the checksum "
                            "saved with them")
  state = jax.tree_util.tree_map_with_path(lambda path, x: x.T if path in flip else x,
                                           out["state"])
  return state, meta


def restore_newest_intact(workdir: str, manager: ocp.CheckpointManager, like: Any, *,
                          keep_best: bool):
  """(manager, step, state, meta) of the newest checkpoint that restores intact, or
  (manager, None, None, None) where there is none at all.

  A damaged checkpoint (truncated or changed files, arrays that fail their checksum)
  is moved aside to checkpoints/damaged_<step> with a warning, and the next older one
  is used; the returned manager no longer lists the damaged ones. DamagedCheckpoint
  when every checkpoint is damaged.
  """
  damaged, newest = [], None
  # Every kept checkpoint is checked (the latest and the best: two at most), since the
  # best one is restored again for the final evaluation.
  for step in sorted(manager.all_steps(), reverse=True):
    try:
      state, meta = restore(manager, step, like)
    except Exception as e:  # pylint: disable=broad-except  # orbax/tensorstore raise many kinds
      reason = " ".join(str(e).split())[:160] or type(e).__name__
      logging.warning("checkpoint %d under %s is damaged (%s)", step, manager.directory,
                      reason)
      print(f"warning: checkpoint {step} under {manager.directory} is damaged ({reason}); "
            f"moved to damaged_{step}", file=sys.stderr)
      _move_aside(manager, step)
      damaged.append(step)
      continue
    if newest is None:
      newest = (step, state, meta)
  if damaged:
    manager = make_manager(workdir, keep_best=keep_best)
  if newest is not None:
    return (manager, *newest)
  if damaged:
    raise DamagedCheckpoint(
        f"{manager.directory}: no intact checkpoint (damaged: steps "
        f"{', '.join(map(str, sorted(damaged)))}, moved to damaged_<step>); pass "
        "--overwrite to start afresh")
  return manager, None, None, None


def _move_aside(manager: ocp.CheckpointManager, step: int) -> None:
  if jax.process_index() != 0:
    return
  directory = os.fspath(manager.directory)
  source = os.path.join(directory, str(step))
  target = os.path.join(directory, f"damaged_{step}")
  n = 1
  while os.path.exists(target):
    n += 1
    target = os.path.join(directory, f"damaged_{step}_{n}")
  if os.path.exists(source):
    os.rename(source, target)


def digest(state: Any) -> str:
  """A CRC-32 of every array of `state` (its bytes in tree order), saved with each
  checkpoint so that changed files are caught on restore rather than trained on."""
  crc = 0
  for leaf in jax.tree.leaves(jax.device_get(state)):
    a = np.ascontiguousarray(np.asarray(leaf))
    crc = zlib.crc32(a.reshape(-1).view(np.uint8), crc)
  return f"{crc:08x}"


def restore_params(directory: str, step: int, params_like: Any) -> tuple[Any, dict]:
  """(params, meta) of checkpoint `step` under `directory`/checkpoints, read into the
  structure and dtypes of `params_like` without the optimizer state (serving needs
  neither the optimizer nor its configuration); layout-1 checkpoints are transposed
  as in `restore`. Reads only: nothing under `directory` is created or changed (the managers here
  are made with create=False and never save).

  Raises CheckpointError naming the checkpoint when it cannot be read (a truncated,
  altered or missing file, parameters of other shapes than `params_like`'s) or holds
  non-finite parameters.
  """
  root = os.path.abspath(os.path.join(directory, "checkpoints"))
  try:
    manager = ocp.CheckpointManager(
        root, options=ocp.CheckpointManagerOptions(create=False),
        item_names=("state", "meta"))
    meta = manager.restore(step, args=ocp.args.Composite(meta=ocp.args.JsonRestore()))["meta"]
    if not isinstance(meta, dict) or not isinstance(meta.get("epoch"), int):
      raise ValueError("its meta item holds no epoch")
    like = {"params": params_like}
    flip = output_kernel_paths(like) if meta.get(_LAYOUT_KEY, 1) < PARAM_LAYOUT else set()

    # Parameters go to this process's first device, whatever the devices they were
    # saved from (a run trained on 8 devices is served on 1).
    device = jax.sharding.SingleDeviceSharding(jax.local_devices()[0])

    def abstract(path, x):
      shape = x.shape[::-1] if path in flip else x.shape
      return jax.ShapeDtypeStruct(shape, x.dtype, sharding=device)

    target = jax.tree_util.tree_map_with_path(abstract, like)
    out = manager.restore(step, args=ocp.args.Composite(state=ocp.args.PyTreeRestore(
        target, restore_args=jax.tree.map(lambda s: ocp.ArrayRestoreArgs(sharding=s.sharding),
                                          target), partial_restore=True)))
    params = jax.tree_util.tree_map_with_path(lambda path, x: x.T if path in flip else x,
                                              out["state"])["params"]
  except MemoryError:
    raise
  except Exception as e:  # pylint: disable=broad-except
    raise CheckpointError(
        f"checkpoint {step} under {root} is damaged or does not match the run's "
        f"config.json ({_cause(e)}); use another checkpoint (--checkpoint=latest or a "
        "step number) or train the run again") from e
  bad = [jax.tree_util.keystr(path) for path, x in jax.tree_util.tree_leaves_with_path(params)
         if not np.all(np.isfinite(np.asarray(x)))]
  if bad:
    raise CheckpointError(f"checkpoint {step} under {root} holds non-finite parameters "
                          f"({', '.join(bad[:3])}): it is damaged or was saved by a run that "
                          "diverged; use another checkpoint")
  return params, meta


def steps(directory: str, *, keep_best: bool) -> tuple[list[int], int | None]:
  """(all checkpoint steps, the best one) under `directory`/checkpoints, read from disk
  (`keep_best` as the run was trained: the best by valid/rmse, else the latest).

  Reads only (no folder is created): ([], None) when there is no checkpoints folder.
  The best is None when no checkpoint has the validation metrics it is chosen by.
  Raises CheckpointError when the checkpoints' records cannot be read.
  """
  root = os.path.abspath(os.path.join(directory, "checkpoints"))
  if not os.path.isdir(root):
    return [], None
  try:
    options = ocp.CheckpointManagerOptions(best_fn=_metric if keep_best else None,
                                           best_mode="min", create=False)
    manager = ocp.CheckpointManager(root, options=options, item_names=("state", "meta"))
    all_steps = sorted(manager.all_steps())
    best = manager.best_step() if all_steps else None
  except MemoryError:
    raise
  except Exception as e:  # pylint: disable=broad-except
    which = _damaged_metrics(root)
    what = f"checkpoint {which} under {root} is damaged" if which is not None else (
        f"the checkpoints under {root} cannot be listed")
    raise CheckpointError(f"{what} ({_cause(e)}); move that checkpoint folder away to use "
                          "the others, or train the run again") from e
  return all_steps, best


def best_step(manager: ocp.CheckpointManager) -> int | None:
  """The best checkpoint's step (the latest if no metrics are kept)."""
  return manager.best_step()


def latest_step(manager: ocp.CheckpointManager) -> int | None:
  return manager.latest_step()


class CheckpointError(DataError):
  """A checkpoint that cannot be read: damaged, incomplete, or not of the run's config."""


def _cause(error: BaseException) -> str:
  """A short account of a failed read: the exception without tensorstore's specs."""
  text = re.sub(r"\s*\[tensorstore_spec(\[\d+\])?='.*?'\]", "", str(error), flags=re.S)
  text = re.sub(r'Error opening "\w+" driver: ', "", text)
  text = " ".join(text.split()) or type(error).__name__
  if isinstance(error, FileNotFoundError) and "not found" not in text:
    text = f"missing file: {text}"
  return text[:400] + (" ..." if len(text) > 400 else "")


def _damaged_metrics(root: str) -> int | None:
  """The first step under `root` whose metrics record is not valid JSON, if any."""
  for name in sorted((n for n in os.listdir(root) if n.isdigit()), key=int):
    path = os.path.join(root, name, "metrics", "metrics")
    if os.path.exists(path):
      try:
        with open(path, encoding="utf-8") as f:
          json.load(f)
      except (OSError, ValueError):
        return int(name)
  return None
