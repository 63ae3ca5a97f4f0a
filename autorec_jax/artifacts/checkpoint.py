"""Orbax checkpoints: keep the best-by-validation and the latest, resume from latest.

Checkpoints are numbered by global train step. Each holds the train state and a JSON
`meta` item (where in training it was taken: completed epochs, batches into the next
one, and the epoch's metrics at an epoch end), so a run can be resumed or evaluated
from its workdir alone. Orbax writes into a temporary directory and renames it when
complete, so a run killed mid-save leaves the previous checkpoints intact.
"""

from __future__ import annotations

import os
from typing import Any

import jax
import orbax.checkpoint as ocp
from orbax.checkpoint import checkpoint_managers as cm

from autorec_jax.models.autoencoder import output_kernel_paths
from autorec_jax.runtime import faults

BEST_METRIC = "valid/rmse"
# The parameter layout a checkpoint's `meta` records: 2 stores an autoencoder's output
# kernel (`dec{L-1}_kernel`) items-major, [n, w]; checkpoints without the key were
# written with it [w, n] (layout 1) and are transposed on restore.
PARAM_LAYOUT = 2
_LAYOUT_KEY = "param_layout"


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
  meta = {**meta, _LAYOUT_KEY: PARAM_LAYOUT}
  manager.save(step, args=ocp.args.Composite(state=ocp.args.StandardSave(state),
                                             meta=ocp.args.JsonSave(meta)),
               metrics=clean)
  faults.reached("checkpoint_save")
  manager.wait_until_finished()


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
  state = jax.tree_util.tree_map_with_path(lambda path, x: x.T if path in flip else x,
                                           out["state"])
  return state, meta


def restore_params(directory: str, step: int, params_like: Any) -> tuple[Any, dict]:
  """(params, meta) of checkpoint `step` under `directory`/checkpoints, read into the
  structure and dtypes of `params_like` without the optimizer state (serving needs
  neither the optimizer nor its configuration); layout-1 checkpoints are transposed
  as in `restore`."""
  manager = ocp.CheckpointManager(os.path.abspath(os.path.join(directory, "checkpoints")),
                                  item_names=("state", "meta"))
  meta = manager.restore(step, args=ocp.args.Composite(meta=ocp.args.JsonRestore()))["meta"]
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
  return params, meta


def steps(directory: str, *, keep_best: bool) -> tuple[list[int], int | None]:
  """(all checkpoint steps, the best one) under `directory`/checkpoints, read from disk
  (`keep_best` as the run was trained: the best by valid/rmse, else the latest)."""
  manager = make_manager(directory, keep_best=keep_best)
  all_steps = sorted(manager.all_steps())
  best = manager.best_step() if all_steps else None
  return all_steps, best


def has_checkpoints(workdir: str) -> bool:
  """Whether `workdir`/checkpoints holds a saved step (a run to resume)."""
  directory = os.path.join(workdir, "checkpoints")
  return os.path.isdir(directory) and any(
      name.isdigit() for name in os.listdir(directory))


def best_step(manager: ocp.CheckpointManager) -> int | None:
  """The best checkpoint's step (the latest if no metrics are kept)."""
  return manager.best_step()


def latest_step(manager: ocp.CheckpointManager) -> int | None:
  return manager.latest_step()
