"""The full-batch trainer of the kernel networks: kernelNet, and GLocal-K's two stages.

`train_full_batch(cfg, workdir)` trains `model.kind=kernel` with rounds of L-BFGS
over the whole train matrix (autorec_jax.training.lbfgs). A round is an "epoch" of
the run: `lbfgs.iterations` iterations, then a validation pass and a checkpoint.
With `global_kernel.enabled` (GLocal-K), `lbfgs.pretrain_rounds` rounds of
`lbfgs.pretrain_iterations` pre-train the local kernel network first, then
`train.num_epochs` rounds fine-tune it on the globally convolved matrix together
with the global kernel's weights. Only fine-tuning rounds compete for the best
checkpoint (the pre-trained network alone is another model). Everything else is the
minibatch trainer's: the workdir, data snapshot, metrics.jsonl, results.json,
resumption (from the newest round), early stopping (`train.patience`, counted in
rounds that compete for the best) and the final evaluation of the best checkpoint.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import time

import jax
import jax.numpy as jnp
import numpy as np
from absl import logging
from flax import struct

from autorec_jax.artifacts import checkpoint, snapshot
from autorec_jax.artifacts.run_config import config_json, flatten, write_config
from autorec_jax.config import checks as config_checks
from autorec_jax.data.batching import CSRBatcher
from autorec_jax.data.run_data import load_data
from autorec_jax.evaluation import ranking
from autorec_jax.evaluation import rmse as evaluate
from autorec_jax.models import global_kernel as gk
from autorec_jax.models.autoencoder import count_params
from autorec_jax.models.registry import make_model
from autorec_jax.runtime import console, faults, parallel
from autorec_jax.runtime.signals import Interrupted, StopSignal
from autorec_jax.training import data_defaults, lbfgs, loop, metrics
from autorec_jax.training import stopping as stopping_lib
from autorec_jax.training import workdir as workdir_lib
from autorec_jax.training.position import Position

# The training-set size at which model.kernel.lambda_2/lambda_s apply as given
# (MovieLens-1M's 90% train part); see effective_lambdas.
REFERENCE_RATINGS = 900_000


@struct.dataclass
class FullBatchState:
  """What a checkpoint holds: the parameters and the rounds completed."""

  params: dict
  round: jax.Array


def effective_lambdas(kernel_cfg, num_train: int) -> tuple[float, float]:
  """(lambda_2, lambda_s) for a train part of `num_train` ratings: the configured ones
  times sqrt(num_train / REFERENCE_RATINGS) when model.kernel.scale_lambdas is set.
  The squared-error sum grows with the number of ratings, the penalties do not; the
  square root (not a linear factor) keeps smaller data sets more strongly
  regularised, as the references' own settings are (ML-100K 20, ML-1M 60-70). The
  rating scale is left out: the sparsity penalty's masks are scale-free, and scaling
  both lambdas by the squared range switched every kernel connection off on Jester's
  -10..10 scale (docs/models.md)."""
  factor = 1.0
  if kernel_cfg.scale_lambdas:
    factor = math.sqrt(num_train / REFERENCE_RATINGS)
  return kernel_cfg.lambda_2 * factor, kernel_cfg.lambda_s * factor


def train_full_batch(cfg, workdir: str) -> dict:
  """Trains the configured kernel network, writes the workdir, returns the results."""
  config_checks.validate(cfg)
  with workdir_lib.open_run(cfg, workdir, process_index=jax.process_index()):
    return _train(cfg, workdir)


def _schedule(cfg) -> list[tuple[str, int]]:
  """(stage, iterations) of every round, in order."""
  rounds = []
  if cfg.model.global_kernel.enabled:
    rounds += [("pretrain", cfg.lbfgs.pretrain_iterations)] * \
        cfg.lbfgs.pretrain_rounds
  stage = "finetune" if cfg.model.global_kernel.enabled else "train"
  return rounds + [(stage, cfg.lbfgs.iterations)] * cfg.train.num_epochs


def _train(cfg, workdir: str) -> dict:
  compiled = metrics.compile_seconds()
  data = load_data(cfg)
  resuming = workdir_lib.has_training(workdir)
  if resuming:
    snapshot.check_fingerprint(workdir, data.loaded.files, data)
  split_summary = data.split.summary(data.loaded.ratings)
  mesh = parallel.make_mesh()
  repl, sharded = parallel.replicated(mesh), parallel.data_sharded(mesh)
  pre, train_csr = loop.model_inputs(cfg, data)
  if jax.process_index() == 0 and not (
      resuming and os.path.exists(os.path.join(workdir, snapshot.SNAPSHOT_FILE))):
    snapshot.save(workdir, data, pre)
    snapshot.write_fingerprint(workdir, data.loaded.files)
  input_path = loop.choose_input_path(cfg, train_csr)
  glocal = bool(cfg.model.global_kernel.enabled)
  full = lbfgs.FullBatch(train_csr, sparse=input_path == "sparse", need_dense=glocal,
                         mesh=mesh)
  model = make_model(cfg.model, train_csr.shape[1], num_rows=train_csr.shape[0])
  lambda_2, lambda_s = effective_lambdas(cfg.model.kernel, data.train.num_ratings)
  logging.info("kernel penalties: lambda_2=%g lambda_s=%g", lambda_2, lambda_s)
  dot_scale = cfg.model.global_kernel.dot_scale
  params = model.init(jax.random.key(cfg.seed), jnp.zeros((1, train_csr.shape[1])))["params"]
  state = jax.device_put(FullBatchState(params=params, round=jnp.zeros((), jnp.int32)), repl)
  num_params = count_params(params)

  def minimizer(stage):
    loss = lbfgs.make_objective(model, full, lambda_s=lambda_s, lambda_2=lambda_2,
                                global_kernel=stage == "finetune", dot_scale=dot_scale)
    return lbfgs.Minimizer(loss, memory=cfg.lbfgs.memory)

  scale = data.loaded.rating_scale if cfg.eval.clip_predictions else (None, None)
  eval_step = jax.jit(evaluate.make_eval_step(model, clip_min=scale[0], clip_max=scale[1],
                                              pre=pre),
                      in_shardings=(repl, sharded), out_shardings=repl)
  lo, hi = data.loaded.rating_scale
  threshold = (cfg.eval.relevance_threshold if cfg.eval.relevance_threshold is not None
               else lo + 0.75 * (hi - lo))

  def batcher(params, stage):
    rows = (gk.input_rows(model, params, train_csr, dot_scale=dot_scale)
            if stage == "finetune" else train_csr)
    return CSRBatcher(rows, cfg.eval.batch_size, seed=cfg.seed, prefetch=0,
                      process_index=jax.process_index(), process_count=jax.process_count())

  def make_evaluator(target, stage="finetune" if glocal else "train"):
    def run(params):
      return evaluate.Evaluator(
          train=data.train, target=target, orientation=cfg.model.orientation,
          batcher=batcher(params, stage), eval_step=eval_step, mesh=mesh,
          rating_scale=scale if scale[0] is not None else None, row_bias=pre.row_bias)(params)
    return run

  def forward(params, x_BxI, row_bias_B):
    out = model.apply({"params": params}, x_BxI, train=False)
    return out if pre.is_identity else pre.inverse(out, row_bias_B)

  def make_ranking(target):
    def run(params, *, shared=None):
      return ranking.RankingEvaluator(
          train=data.train, target=target, orientation=cfg.model.orientation,
          batcher=batcher(params, "finetune" if glocal else "train"), forward=forward,
          mesh=mesh, ks=cfg.eval.ranking_ks, threshold=threshold,
          row_bias=pre.row_bias)(params, shared=shared)
    return run

  has_valid = data.valid.num_ratings > 0
  manager = checkpoint.make_manager(workdir, keep_best=has_valid)
  manager, latest, restored, meta = checkpoint.restore_newest_intact(
      workdir, manager, state, keep_best=has_valid)
  position = Position()  # rounds done, their seconds, the best fine-tuning round
  if latest is not None:
    if "config" in meta:
      workdir_lib.refuse_other_config(workdir, meta["config"], cfg, f"checkpoint {latest}")
    state = restored
    position = Position.from_meta(meta)
    logging.info("resumed after round %d", latest)
  config = json.loads(config_json(cfg))
  position.config = config
  write_config(cfg, workdir)
  done = int(state.round)
  writer_path = os.path.join(workdir, "metrics.jsonl")
  if jax.process_index() == 0:
    metrics.truncate_jsonl(writer_path, done)
  writer = metrics.MetricWriter(workdir)
  if latest is None:
    writer.write_hparams(flatten(config))
  if jax.process_index() == 0:
    name = console.data_name(cfg.data.name, data.loaded)
    print(console.run_line(name, data, orientation=cfg.model.orientation,
                           hidden=model.hidden, num_params=num_params,
                           input_path=input_path, resumed=latest, mirrored=False)
          + f"; L-BFGS, lambda_2 {lambda_2:.4g}, lambda_s {lambda_s:.4g}", flush=True)
  schedule = _schedule(cfg)
  # Early stopping counts rounds that compete for the best (fine-tuning rounds for
  # GLocal-K): pre-training rounds are never evaluated against it.
  patience = cfg.train.patience if has_valid else 0
  minimizers = {}
  stop = StopSignal()
  with stop.installed():
    for index in range(done, len(schedule)):
      if position.patience_ran_out(patience):
        break
      stage, iterations = schedule[index]
      t0 = time.perf_counter()
      if stage not in minimizers:
        minimizers[stage] = minimizer(stage)
      params, loss = minimizers[stage].round(state.params, iterations)
      state = FullBatchState(params=params, round=jnp.asarray(index + 1, jnp.int32))
      faults.reached("train_step")
      seconds = time.perf_counter() - t0
      position.seconds.append(seconds)
      row = {"epoch": index + 1, "train/loss": loss, "train/iterations": iterations,
             "train/stage": stage, "perf/epoch_secs": seconds}
      eval_metrics = None
      if has_valid:
        t1 = time.perf_counter()
        result = make_evaluator(data.valid, stage)(state.params)
        faults.reached("eval")
        row.update({"valid/rmse": result["rmse"], "valid/mae": result["mae"],
                    "perf/eval_secs": time.perf_counter() - t1})
        competes = stage != "pretrain"
        if competes:
          eval_metrics = {"valid/rmse": result["rmse"]}
          position.evaluated(index + 1, result["rmse"])
      if jax.process_index() == 0:
        print(console.eval_line(
            epoch=index + 1, num_epochs=len(schedule), loss=loss,
            valid_rmse=row.get("valid/rmse"),
            best_rmse=position.best_rmse if position.best_epoch else None,
            best_epoch=position.best_epoch or None, seconds=time.perf_counter() - t0)
              + f"  {stage}", flush=True)
      position = position.next_epoch(index + 1)
      writer.write_scalars(index + 1, row)
      writer.flush()
      checkpoint.save(manager, index + 1, state, position.to_meta(row), eval_metrics)
      if stop.signum is not None:
        writer.close()
        raise Interrupted(stop.signum, index + 1, 0)

  stopping = stopping_lib.summary(position, patience=patience, num_epochs=len(schedule),
                                  has_valid=has_valid)
  if jax.process_index() == 0:
    print(stopping_lib.console_line(stopping), flush=True)
  results = loop.final_results(cfg, data, manager, state, make_evaluator, make_ranking,
                               position.seconds, num_params, split_summary)
  results.update({"lambda_2": lambda_2, "lambda_s": lambda_s, "optimizer": "lbfgs",
                  "stages": sorted({s for s, _ in schedule}), **stopping})
  results.update(data_defaults.scale_record(
      data_defaults.choose_scale(cfg.preprocess.scale, data.loaded.rating_scale),
      data.loaded.rating_scale))
  results["compile_seconds"] = metrics.compile_seconds() - compiled
  writer.close()
  return metrics.finish_results(results, workdir if jax.process_index() == 0 else None)
