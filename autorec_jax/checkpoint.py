"""Orbax checkpoints: keep the best-by-validation and the latest, resume from latest.

Checkpoints are numbered by global train step. Each holds the train state and a JSON
`meta` item (where in training it was taken: completed epochs, batches into the next
one, and the epoch's metrics at an epoch end), so a run can be resumed or evaluated
from its workdir alone. Orbax writes into a temporary directory and renames it when
complete, so a run killed mid-save leaves the previous checkpoints intact.
"""

from __future__ import annotations

import os
import re
from typing import Any

import jax
import orbax.checkpoint as ocp
from orbax.checkpoint import checkpoint_managers as cm

from autorec_jax import faults

BEST_METRIC = "valid/rmse"
# The parameter layout a checkpoint's `meta` records: 2 stores an autoencoder's output
# kernel (`dec{L-1}_kernel`) items-major, [n, w]; checkpoints without the key were
# written with it [w, n] (layout 1) and are transposed on restore.
PARAM_LAYOUT = 2
_LAYOUT_KEY = "param_layout"
_DECODER_KERNEL = re.compile(r"dec(\d+)_kernel")


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
    flip = _output_kernel_paths(like)

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


def _output_kernel_paths(tree: Any) -> set:
  """Paths of the leaves named after an autoencoder's output kernel (the decoder
  kernel of the highest index): the parameter and its optimizer slots."""
  def name(path):
    key = path[-1] if path else None
    return getattr(key, "key", getattr(key, "name", None))

  paths = [path for path, _ in jax.tree_util.tree_flatten_with_path(tree)[0]]
  indices = [int(m.group(1)) for p in paths
             if isinstance(name(p), str) and (m := _DECODER_KERNEL.fullmatch(name(p)))]
  if not indices:
    return set()
  last = f"dec{max(indices)}_kernel"
  return {p for p in paths if name(p) == last}


def best_step(manager: ocp.CheckpointManager) -> int | None:
  """The best checkpoint's step (the latest if no metrics are kept)."""
  return manager.best_step()


def latest_step(manager: ocp.CheckpointManager) -> int | None:
  return manager.latest_step()
