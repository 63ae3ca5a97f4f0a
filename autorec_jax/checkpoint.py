"""Orbax checkpoints: keep the best-by-validation and the latest, resume from latest.

Checkpoints are numbered by completed epoch. Each holds the train state and a JSON
`meta` item (the epoch's metrics and the resolved config), so a run can be resumed
or evaluated from its workdir alone. Orbax writes into a temporary directory and
renames it when complete, so a run killed mid-save leaves the previous checkpoints
intact.
"""

from __future__ import annotations

import os
from typing import Any

import jax
import orbax.checkpoint as ocp
from orbax.checkpoint import checkpoint_managers as cm

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
      enable_async_checkpointing=False)
  directory = os.path.abspath(os.path.join(workdir, "checkpoints"))
  return ocp.CheckpointManager(directory, options=options, item_names=("state", "meta"))


def save(manager: ocp.CheckpointManager, epoch: int, state: Any, meta: dict,
         metrics: dict[str, float] | None) -> None:
  """Saves `state` and `meta` as checkpoint `epoch` and waits until it is on disk."""
  clean = None if metrics is None else {k: float(v) for k, v in metrics.items()}
  manager.save(epoch, args=ocp.args.Composite(state=ocp.args.StandardSave(state),
                                              meta=ocp.args.JsonSave(meta)),
               metrics=clean)
  manager.wait_until_finished()


def restore(manager: ocp.CheckpointManager, epoch: int, like: Any) -> tuple[Any, dict]:
  """Restores checkpoint `epoch` into the structure, dtypes and shardings of `like`."""
  abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, like)
  out = manager.restore(epoch, args=ocp.args.Composite(
      state=ocp.args.StandardRestore(abstract), meta=ocp.args.JsonRestore()))
  return out["state"], out["meta"]


def best_epoch(manager: ocp.CheckpointManager) -> int | None:
  """The epoch of the best checkpoint (the latest if no metrics are kept)."""
  return manager.best_step()


def latest_epoch(manager: ocp.CheckpointManager) -> int | None:
  return manager.latest_step()
