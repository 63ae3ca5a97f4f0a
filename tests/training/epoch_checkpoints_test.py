"""Checkpoint writes by time (ckpt.every_secs): the best is never lost, and a run that
dies between writes resumes from the last one to the same results."""

import json

import jax
import jax.numpy as jnp
import optax
import pytest

from autorec_jax.artifacts import checkpoint
from autorec_jax.models.autoencoder import AutoEncoder
from autorec_jax.training import epoch_checkpoints
from autorec_jax.training import loop
from autorec_jax.training import step as train_step_lib
from configs import movielens_1m
from tests import synthetic


class _Clock:
  def __init__(self):
    self.now = 0.0

  def __call__(self):
    return self.now


def _state(step):
  state = train_step_lib.init_state(AutoEncoder(hidden=(4,)), optax.adam(1e-3), 6,
                                    jax.random.key(0))
  params = jax.tree.map(lambda x: x + step, state.params)  # tell the steps apart
  return state.replace(step=jnp.asarray(step, jnp.int32), params=params)


def test_writes_when_due_and_holds_the_best_in_between(tmp_path):
  clock = _Clock()
  manager = checkpoint.make_manager(str(tmp_path))
  saver = epoch_checkpoints.EpochCheckpoints(manager, every_secs=10, clock=clock)
  # (step, valid RMSE, seconds since the start): the first epoch end is always due.
  epochs = [(1, 0.9, 1), (2, 0.8, 2), (3, 0.85, 3), (4, 0.7, 5), (5, 0.75, 12),
            (6, 0.72, 13)]
  best = float("inf")
  for step, rmse, now in epochs:
    clock.now = now
    improved = rmse < best
    best = min(best, rmse)
    saver.epoch_end(step, _state(step), {"epoch": step}, {"valid/rmse": rmse},
                    improved=improved, last=step == 6)
  # 1 due; 2, 4 held (4 replaced 2); 5 due: 4 written first, then 5; 6 last.
  assert saver.writes == 4
  assert manager.all_steps() == [4, 6]
  assert checkpoint.best_step(manager) == 4
  restored, meta = checkpoint.restore(manager, 4, _state(0))
  assert meta["epoch"] == 4
  for a, b in zip(jax.tree.leaves(restored), jax.tree.leaves(_state(4))):
    assert (a == b).all()  # the held copy, not the later state


def test_every_write_and_flush_puts_the_held_best_first(tmp_path):
  clock = _Clock()
  manager = checkpoint.make_manager(str(tmp_path))
  saver = epoch_checkpoints.EpochCheckpoints(manager, every_secs=100, clock=clock)
  saver.epoch_end(1, _state(1), {"epoch": 1}, {"valid/rmse": 0.9}, improved=True, last=False)
  saver.epoch_end(2, _state(2), {"epoch": 2}, {"valid/rmse": 0.8}, improved=True, last=False)
  assert manager.all_steps() == [1]
  saver.write(3, _state(3), {"epoch": 2, "batch": 1}, None)  # a mid-epoch checkpoint
  assert manager.all_steps() == [2, 3] and checkpoint.best_step(manager) == 2
  saver.epoch_end(4, _state(4), {"epoch": 3}, {"valid/rmse": 0.7}, improved=True, last=False)
  saver.flush()
  assert manager.all_steps() == [4] and saver.writes == 4
  saver.flush()  # nothing held: nothing written
  assert saver.writes == 4


def test_zero_seconds_writes_every_epoch(tmp_path):
  manager = checkpoint.make_manager(str(tmp_path))
  saver = epoch_checkpoints.EpochCheckpoints(manager, every_secs=0, clock=_Clock())
  for step in (1, 2, 3):
    saver.epoch_end(step, _state(step), {"epoch": step}, {"valid/rmse": 1.0 / step},
                    improved=True, last=False)
  assert saver.writes == 3


def _config(data, every_secs):
  cfg = movielens_1m.get_config("tiny")
  cfg.data.name = "csv"
  cfg.data.path = str(data)
  cfg.train.batch_size = 16
  cfg.eval.batch_size = 32
  cfg.train.num_epochs = 5
  cfg.train.patience = 0
  cfg.ckpt.every_secs = every_secs
  return cfg


class _Killed(Exception):
  pass


def test_a_run_that_dies_between_writes_resumes_to_the_same_results(tmp_path, monkeypatch):
  data = synthetic.write_ratings_csv(tmp_path / "r.csv")
  every_epoch = loop.train_and_evaluate(_config(data, 0.0), str(tmp_path / "reference"))
  # Written rarely: epoch 1, then nothing until the last epoch, where the run dies
  # writing the held best (the epochs after 1 exist only in memory).
  real_save, calls = checkpoint.save, []

  def dying_save(manager, step, *args, **kwargs):
    calls.append(step)
    if len(calls) == 2:
      raise _Killed
    return real_save(manager, step, *args, **kwargs)

  monkeypatch.setattr(checkpoint, "save", dying_save)
  with pytest.raises(_Killed):
    loop.train_and_evaluate(_config(data, 1e9), str(tmp_path / "run"))
  monkeypatch.setattr(checkpoint, "save", real_save)
  assert sorted(checkpoint.make_manager(str(tmp_path / "run")).all_steps()) == [calls[0]]
  resumed = loop.train_and_evaluate(_config(data, 1e9), str(tmp_path / "run"))
  for key in ("test/rmse", "valid/rmse", "best_epoch", "best_step", "test/ndcg@10"):
    assert resumed[key] == every_epoch[key], key
  epochs = [json.loads(l)["epoch"]
            for l in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
  assert epochs == [1, 2, 3, 4, 5]
