"""Early stopping (train.patience): where a run stops, what it reports, and that a
resumed or extended run stops at the same epoch with the same results."""

import json

import pytest

from autorec_jax.training import loop
from autorec_jax.training import stopping
from autorec_jax.training.position import Position
from configs import movielens_1m
from tests import synthetic

# The tiny model on the synthetic set: valid RMSE falls to its best at epoch 4 and
# rises from there (checked by `free_run` below).
BEST = 4


def _config(data, *, num_epochs, patience):
  cfg = movielens_1m.get_config("tiny")
  cfg.data.name = "csv"
  cfg.data.path = str(data)
  cfg.train.batch_size = 16
  cfg.eval.batch_size = 32
  cfg.train.num_epochs = num_epochs
  cfg.train.patience = patience
  return cfg


def _epochs(workdir):
  return [json.loads(l)["epoch"] for l in (workdir / "metrics.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def data(tmp_path_factory):
  return synthetic.write_ratings_csv(tmp_path_factory.mktemp("es") / "r.csv")


@pytest.fixture(scope="module")
def free_run(data, tmp_path_factory):
  """8 epochs without early stopping."""
  workdir = tmp_path_factory.mktemp("free") / "run"
  results = loop.train_and_evaluate(_config(data, num_epochs=8, patience=0), str(workdir))
  rows = [json.loads(l) for l in (workdir / "metrics.jsonl").read_text().splitlines()]
  rmse = [r["valid/rmse"] for r in rows]
  assert rmse.index(min(rmse)) + 1 == BEST and rmse[BEST:] > [min(rmse)] * 4, rmse
  return results


@pytest.fixture(scope="module")
def stopped_run(data, tmp_path_factory):
  workdir = tmp_path_factory.mktemp("stopped") / "run"
  results = loop.train_and_evaluate(_config(data, num_epochs=12, patience=2), str(workdir))
  return workdir, results


def test_stops_patience_epochs_after_the_best(stopped_run, free_run):
  workdir, results = stopped_run
  assert _epochs(workdir) == [1, 2, 3, 4, 5, 6]
  assert results["best_epoch"] == BEST
  assert results["stopped_epoch"] == BEST + 2
  assert results["stop_reason"] == stopping.STOP_PATIENCE
  assert results["still_improving"] is False
  # The same best model as the run that went on: stopping changes nothing before it.
  assert results["test/rmse"] == free_run["test/rmse"]
  assert results["valid/rmse"] == free_run["valid/rmse"]
  assert free_run["stop_reason"] == stopping.STOP_NUM_EPOCHS
  assert free_run["still_improving"] is False


def test_a_capped_run_extended_later_stops_at_the_same_epoch(data, tmp_path, stopped_run):
  _, expected = stopped_run
  workdir = tmp_path / "run"
  capped = loop.train_and_evaluate(_config(data, num_epochs=BEST + 1, patience=2),
                                   str(workdir))
  assert capped["stop_reason"] == stopping.STOP_NUM_EPOCHS
  assert capped["still_improving"] is True  # its best was 1 epoch before the cap
  resumed = loop.train_and_evaluate(_config(data, num_epochs=12, patience=2), str(workdir))
  assert _epochs(workdir) == [1, 2, 3, 4, 5, 6]
  for key in ("test/rmse", "valid/rmse", "best_epoch", "stopped_epoch", "stop_reason"):
    assert resumed[key] == expected[key], key
  # A stopped run given more epochs stays stopped.
  again = loop.train_and_evaluate(_config(data, num_epochs=30, patience=2), str(workdir))
  assert _epochs(workdir) == [1, 2, 3, 4, 5, 6]
  assert again["test/rmse"] == expected["test/rmse"]


def test_patience_counts_from_the_best_and_needs_an_evaluated_epoch_end():
  p = Position(epoch=6, best_epoch=4, last_eval=6)
  assert p.patience_ran_out(2) and not p.patience_ran_out(3)
  assert not p.patience_ran_out(0)  # off
  assert not Position(epoch=6, best_epoch=4, last_eval=5).patience_ran_out(2)
  assert not Position(epoch=6, batch=3, best_epoch=4, last_eval=6).patience_ran_out(2)
  assert not Position(epoch=6, best_epoch=0, last_eval=6).patience_ran_out(2)  # no best
  p = Position()
  assert p.evaluated(1, 0.9) and not p.evaluated(2, 0.95) and not p.evaluated(3, float("nan"))
  assert (p.best_epoch, p.last_eval) == (1, 3)
  assert Position.from_meta(p.to_meta()) == p


def test_the_console_line_says_why():
  base = {"stopped_epoch": 6, "num_epochs_cap": 12, "patience": 2,
          "best_valid_rmse_epoch": 4}
  assert stopping.console_line({**base, "stop_reason": "patience", "still_improving": False}
                               ) == ("stopped at epoch 6 of 12: no better valid RMSE in 2 "
                                     "epochs (best @4; train.patience)")
  line = stopping.console_line({**base, "stopped_epoch": 12, "stop_reason": "num_epochs",
                                "still_improving": True})
  assert "still improving" in line and "more epochs may help" in line


def test_a_best_epoch_long_before_the_cap_is_not_still_improving():
  p = Position()
  p.evaluated(7, 0.9)
  for epoch in range(8, 41):
    p.evaluated(epoch, 1.0)
  p = p.next_epoch(40)
  huge = stopping.summary(p, patience=100_000, num_epochs=40, has_valid=True)
  assert huge["stop_reason"] == "num_epochs" and huge["still_improving"] is False
  q = Position()
  q.evaluated(33, 0.9)
  q = q.next_epoch(40)
  assert stopping.summary(q, patience=100_000, num_epochs=40,
                          has_valid=True)["still_improving"] is True
