"""Why and where a minibatch run stopped, for results.json and the console.

Training stops at the first validation pass that finds no better validation RMSE
than `train.patience` epochs (or more) before it, or at `train.num_epochs`, a cap. A
run stopped by the cap while validation was still improving may be under-trained
(too few epochs, or a learning-rate schedule that decayed too soon), and says so.
"""

from __future__ import annotations

from autorec_jax.training.position import STOP_NUM_EPOCHS, STOP_PATIENCE, Position

# The most recent epochs in which a best validation RMSE counts as still improving.
RECENT_EPOCHS = 10


def summary(position: Position, *, patience: int, num_epochs: int,
            has_valid: bool) -> dict:
  """{"stopped_epoch", "stop_reason", "still_improving", "patience", "num_epochs_cap",
  "best_valid_rmse"} of a run that has stopped at `position`.

  `still_improving` (None without a validation part): stopped by the cap with a
  better validation RMSE in its last `patience` epochs, at most the last
  RECENT_EPOCHS (the last epoch's, when patience is 0): a best epoch further back is
  no sign that more epochs would help, however large the patience.
  """
  ran_out = position.patience_ran_out(patience)
  still = None
  if has_valid:
    still = (not ran_out and position.best_epoch > 0
             and position.epoch - position.best_epoch < min(max(patience, 1), RECENT_EPOCHS))
  return {"stopped_epoch": position.epoch,
          "stop_reason": STOP_PATIENCE if ran_out else STOP_NUM_EPOCHS,
          "still_improving": still, "patience": patience, "num_epochs_cap": num_epochs,
          "best_valid_rmse_epoch": position.best_epoch if has_valid else None}


def console_line(s: dict) -> str:
  """One line: where training stopped and why, e.g. `stopped at epoch 23 of 60: no
  better valid RMSE in 10 epochs (best @13)`."""
  where = f"stopped at epoch {s['stopped_epoch']} of {s['num_epochs_cap']}"
  best = s["best_valid_rmse_epoch"]
  if s["stop_reason"] == STOP_PATIENCE:
    return (f"{where}: no better valid RMSE in {s['patience']} epochs (best @{best}; "
            "train.patience)")
  if s["still_improving"]:
    return (f"{where} (train.num_epochs) with valid RMSE still improving (best @{best}): "
            "more epochs may help")
  if best is None:
    return f"{where} (train.num_epochs; no validation part: the last epoch's model is used)"
  return f"{where} (train.num_epochs; best @{best})"
