"""Where a run stands, as its checkpoints record it, and when it stops (the
minibatch trainer's epochs; the full-batch trainer's L-BFGS rounds, with no batches).

`Position` is saved in every checkpoint's `meta`, so a resumed run continues exactly
where the checkpoint was: completed epochs, batches into the next one and that
partial epoch's metric sums, the learning-rate scale after rollbacks, and the best
validation RMSE so far with its epoch. Early stopping is decided from it alone, so an
uninterrupted run and one killed and resumed at any point stop at the same epoch.
"""

from __future__ import annotations

import dataclasses

# Why training ended, as results.json says it.
STOP_PATIENCE = "patience"  # no better validation RMSE for train.patience epochs
STOP_NUM_EPOCHS = "num_epochs"  # the train.num_epochs cap


@dataclasses.dataclass
class Position:
  """Where training is: completed epochs, batches into the next one, and that partial
  epoch's metric sums, so a resumed run continues exactly where the checkpoint was."""

  epoch: int = 0
  batch: int = 0
  sums: dict = dataclasses.field(default_factory=dict)
  seconds: list = dataclasses.field(default_factory=list)
  lr_scale: float = 1.0
  rollbacks: int = 0
  best_rmse: float = float("inf")  # the best validation RMSE so far, and its epoch
  best_epoch: int = 0
  last_eval: int = 0  # the last epoch that had a validation pass
  config: dict = dataclasses.field(default_factory=dict)  # the run's resolved config

  @classmethod
  def from_meta(cls, meta: dict) -> "Position":
    return cls(epoch=int(meta["epoch"]), batch=int(meta.get("batch", 0)),
               sums=dict(meta.get("sums", {})),
               # "seconds": the full-batch trainer's checkpoints before this record
               seconds=list(meta.get("epoch_seconds", meta.get("seconds", []))),
               lr_scale=float(meta.get("lr_scale", 1.0)),
               rollbacks=int(meta.get("rollbacks", 0)),
               best_rmse=float(meta.get("best_rmse", float("inf"))),
               best_epoch=int(meta.get("best_epoch", 0)),
               last_eval=int(meta.get("last_eval", 0)))

  def to_meta(self, row: dict | None = None) -> dict:
    """A JSON-ready record of this position (copies: the position goes on changing)."""
    meta = {"epoch": self.epoch, "batch": self.batch, "sums": dict(self.sums),
            "epoch_seconds": list(self.seconds), "lr_scale": self.lr_scale,
            "rollbacks": self.rollbacks, "best_rmse": self.best_rmse,
            "best_epoch": self.best_epoch, "last_eval": self.last_eval,
            "config": self.config}
    if row is not None:
      meta["metrics"] = dict(row)
    return meta

  def epoch_means(self) -> dict:
    steps = max(self.batch, 1)
    return {k: v / steps for k, v in self.sums.items() if k != "train/rows"}

  def next_epoch(self, epoch: int) -> "Position":
    return dataclasses.replace(self, epoch=epoch, batch=0, sums={})

  def evaluated(self, epoch: int, rmse: float) -> bool:
    """Records epoch `epoch`'s validation RMSE; True when it is the best so far."""
    self.last_eval = epoch
    if rmse < self.best_rmse:  # NaN never is
      self.best_rmse, self.best_epoch = rmse, epoch
      return True
    return False

  def patience_ran_out(self, patience: int) -> bool:
    """Whether training stops here: the last completed epoch was evaluated, and the
    best validation RMSE is `patience` or more epochs older (patience 0: never)."""
    return (patience > 0 and self.best_epoch > 0 and self.last_eval == self.epoch
            and self.batch == 0 and self.epoch - self.best_epoch >= patience)
