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

from autorec_jax import faults

BEST_METRIC = "valid/rmse"


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
  manager.save(step, args=ocp.args.Composite(state=ocp.args.StandardSave(state),
                                             meta=ocp.args.JsonSave(meta)),
               metrics=clean)
  faults.reached("checkpoint_save")
  manager.wait_until_finished()


def restore(manager: ocp.CheckpointManager, step: int, like: Any) -> tuple[Any, dict]:
  """Restores checkpoint `step` into the structure, dtypes and shardings of `like`."""
  abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, like)
  out = manager.restore(step, args=ocp.args.Composite(
      state=ocp.args.StandardRestore(abstract), meta=ocp.args.JsonRestore()))
  return out["state"], out["meta"]


def best_step(manager: ocp.CheckpointManager) -> int | None:
  """The best checkpoint's step (the latest if no metrics are kept)."""
  return manager.best_step()


def latest_step(manager: ocp.CheckpointManager) -> int | None:
  return manager.latest_step()
