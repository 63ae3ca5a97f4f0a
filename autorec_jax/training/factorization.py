"""The run loop of the matrix-factorization baselines (`model.kind` svd or als).

`train_and_evaluate_factorization(cfg, workdir)` loads the data with the same split
as the autoencoders (`run_data_lib.load_data`), maps ratings to [-1, 1] and removes the
train offsets (global mean, and user and item means with `model.use_biases`), then
fits SVD by mini-batch gradient descent (`train.num_epochs` epochs of
`train.batch_size` ratings, with the `optim` group's optimizer and schedule; the
paper's is plain SGD at a constant rate) or ALS-WR (`train.num_epochs` alternating
iterations). After every epoch or iteration it measures train and validation RMSE,
keeps the best-by-validation factors in `workdir/checkpoints/best.npz`, and finally
evaluates them on the test part. The workdir gets the same files as an autoencoder
run: config.json, metrics.jsonl, tensorboard/, checkpoints/ and results.json (same
keys). Runs are short, so rerunning the same config in its workdir starts afresh
instead of resuming; a workdir holding a run of another config is refused.

Predictions are clipped to the rating scale (`eval.clip_predictions`); a held-out
pair whose user or item has no train rating gets `evaluate.TrainStats.fallback`, as in
the autoencoder runs. Single-process: the fit runs on the default device.
"""

from __future__ import annotations

import os
import statistics
import time

import jax
import jax.numpy as jnp
import numpy as np
from absl import logging

from autorec_jax.artifacts import run_config, snapshot
from autorec_jax.artifacts.factors import BEST_FILE, save_factors
from autorec_jax.config import checks as config_checks
from autorec_jax.data import run_data as run_data_lib
from autorec_jax.evaluation.pairs import PairPredictor
from autorec_jax.models import factorization as fz
from autorec_jax.models.registry import FACTORIZATION_KINDS as KINDS
from autorec_jax.training import data_defaults, metrics, optim
from autorec_jax.training import stopping as stopping_lib
from autorec_jax.training import workdir as workdir_lib
from autorec_jax.training.position import Position

_ALS_CHUNK = 16384  # ratings per normal-equation accumulation step
_INIT_STD = 0.1


def validate(cfg) -> None:
  """Raises ConfigError naming the first impossible field of a factorization config."""
  config_checks.validate(cfg)
  m = cfg.model
  if m.kind not in KINDS:  # model.rank and model.reg are checked with every field
    raise config_checks.ConfigError(
        f"model.kind={m.kind!r} must be one of {KINDS} for a baseline run")


def _make_fitter(cfg, num_users: int, num_items: int, user: np.ndarray, item: np.ndarray,
                 target: np.ndarray, reg: float):
  """(init factors, fit_epoch(factors, epoch) -> (factors, {"train/loss"}))."""
  m = cfg.model
  factors = fz.init_factors(jax.random.key(cfg.seed), num_users, num_items, m.rank,
                            init_std=_INIT_STD)
  count = max(len(target), 1)
  if m.kind == "svd":
    steps_per_epoch = -(-len(target) // cfg.train.batch_size)
    tx, schedule = optim.from_config(cfg.optim, steps_per_epoch)
    epoch_fn = fz.make_svd_epoch(tx, reg=reg, learn_biases=m.use_biases)
    arrays = tuple(jnp.asarray(a) for a in (user, item, target))
    opt_state = [tx.init(factors)]

    def fit_epoch(factors, epoch):
      index, mask = fz.epoch_batches(len(target), cfg.train.batch_size, seed=cfg.seed,
                                     epoch=epoch)
      lr = float(schedule((epoch - 1) * steps_per_epoch))
      factors, opt_state[0], sums = epoch_fn(factors, opt_state[0], *arrays, index, mask)
      return factors, {"train/loss": float(sums["loss"]) / count, "train/lr": lr}

    return factors, fit_epoch

  by_user = fz.chunk_by_row(user, item, target, num_users, chunk=_ALS_CHUNK)
  by_item = fz.chunk_by_row(item, user, target, num_items, chunk=_ALS_CHUNK)
  iteration = fz.make_als_iteration(reg=reg, learn_biases=m.use_biases)
  objective = jax.jit(lambda f, a, b: fz.als_objective(f, a, b, reg=reg)[0])

  def fit_als(factors, epoch):
    del epoch  # ALS-WR is deterministic given its initial item factors
    factors = iteration(factors, by_user, by_item)
    return factors, {"train/loss": float(objective(factors, by_user, by_item)) / count}

  return factors, fit_als


def train_and_evaluate_factorization(cfg, workdir: str) -> dict:
  """Fits the configured baseline, writes the workdir, returns the final results."""
  validate(cfg)
  # Runs are short: the same config in its workdir starts afresh, another is refused.
  with workdir_lib.open_run(cfg, workdir):
    workdir_lib.clear_workdir(workdir)
    run_config.write_config(cfg, workdir)
    return _fit_and_evaluate(cfg, workdir)


def _fit_and_evaluate(cfg, workdir: str) -> dict:
  compiled = metrics.compile_seconds()
  data = run_data_lib.load_data(cfg)
  snapshot.save(workdir, data, None)
  snapshot.write_fingerprint(workdir, data.loaded.files)
  ratings = data.loaded.ratings
  split_summary = data.split.summary(ratings)
  logging.info("data %s: %d users x %d items, split %s", ratings.source, ratings.num_users,
               ratings.num_items, split_summary)
  lo, hi = data.loaded.rating_scale
  tr = data.train
  value = fz.to_unit_scale(tr.rating, lo, hi)
  offsets = fz.fit_offsets(tr.user, tr.item, value, ratings.num_users, ratings.num_items,
                           use_biases=cfg.model.use_biases)
  target = (value - np.asarray(fz.offset(offsets, tr.user, tr.item))).astype(np.float32)
  predictor = PairPredictor(tr, offsets, (lo, hi), clip=cfg.eval.clip_predictions)
  reg = data_defaults.choose_reg(
      cfg.model.reg, kind=cfg.model.kind, rank=cfg.model.rank, num_ratings=tr.num_ratings,
      num_users=len(np.unique(tr.user)), num_items=len(np.unique(tr.item)))
  logging.info("lambda %g (%s)", reg.value, reg.why)
  factors, fit_epoch = _make_fitter(cfg, ratings.num_users, ratings.num_items, tr.user,
                                    tr.item, target, reg.value)
  num_params = fz.num_params(factors, learn_biases=cfg.model.use_biases)

  writer = metrics.MetricWriter(workdir)
  has_valid = data.valid.num_ratings > 0
  patience = cfg.train.patience if has_valid else 0
  best = {"epoch": 0, "rmse": float("inf"), "mae": float("nan"), "factors": factors}
  position = Position()
  epoch_seconds: list[float] = []
  for epoch in range(1, cfg.train.num_epochs + 1):
    if position.patience_ran_out(patience):
      break
    t0 = time.perf_counter()
    factors, row = fit_epoch(factors, epoch)
    jax.block_until_ready(factors)
    epoch_seconds.append(time.perf_counter() - t0)
    metrics.check_finite(row["train/loss"], what="train/loss", epoch=epoch, step=epoch)
    row = {"epoch": epoch, **row,
           "train/rmse": predictor.evaluate(factors, tr)["rmse"],
           "perf/epoch_secs": epoch_seconds[-1]}
    if has_valid:
      valid = predictor.evaluate(factors, data.valid)
      row.update({"valid/rmse": valid["rmse"], "valid/mae": valid["mae"]})
      position.evaluated(epoch, valid["rmse"])
    position = position.next_epoch(epoch)
    writer.write_scalars(epoch, row)
    writer.flush()
    # Without a validation part the latest factors count as the best.
    if not has_valid or row["valid/rmse"] < best["rmse"]:
      best = {"epoch": epoch, "rmse": row.get("valid/rmse", float("nan")),
              "mae": row.get("valid/mae", float("nan")), "factors": factors}
      save_factors(os.path.join(workdir, BEST_FILE), factors, offsets,
                   {"epoch": epoch, "metrics": row})
  writer.close()
  stopping = stopping_lib.summary(position, patience=patience,
                                  num_epochs=cfg.train.num_epochs, has_valid=has_valid)
  print(f"{cfg.model.kind}: lambda {reg.value:.4g} ({reg.why}); "
        f"{stopping_lib.console_line(stopping)}", flush=True)

  test = predictor.evaluate(best["factors"], data.test)
  results = {
      "test/rmse": test["rmse"], "test/mae": test["mae"], "test/count": test["count"],
      "test/cold_count": test["cold_count"],
      "valid/rmse": best["rmse"], "valid/mae": best["mae"],
      "best_epoch": int(best["epoch"]), "epochs_run": len(epoch_seconds),
      "seconds_per_epoch": statistics.median(epoch_seconds),
      "train_seconds": float(sum(epoch_seconds)),
      "num_params": num_params, "num_users": ratings.num_users,
      "num_items": ratings.num_items, "split": split_summary,
      **stopping, "model/reg": reg.value, "model/reg_why": reg.why,
      # Always [-1, 1]: the baselines' own preprocessing (Strub & Mary 4.1).
      **data_defaults.scale_record(data_defaults.ScaleChoice(
          True, "factorization baselines: always [-1, 1]"), (lo, hi)),
      "compile_seconds": metrics.compile_seconds() - compiled,
  }
  logging.info("results: %s", results)
  return metrics.finish_results(results, workdir)
