"""The minibatch trainer: the train-and-evaluate loop around the jitted step.

`train_and_evaluate(config, workdir)` loads and splits the data, trains with a
validation pass every `train.eval_every_epochs`, checkpoints best and latest after
each epoch, resumes from the latest checkpoint when the workdir already holds the
same run, and finally evaluates the best checkpoint on the test set.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import statistics
import time
from typing import Any

import jax
from absl import logging

from autorec_jax.artifacts import checkpoint, snapshot
from autorec_jax.artifacts.run_config import config_json, flatten, write_config
from autorec_jax.config import checks as config_checks
from autorec_jax.data import preprocess
from autorec_jax.data.batching import CSRBatcher
from autorec_jax.data.run_data import RunData, load_data
from autorec_jax.evaluation import ranking
from autorec_jax.evaluation import rmse as evaluate
from autorec_jax.models.autoencoder import count_params
from autorec_jax.models.registry import make_model
from autorec_jax.runtime import console, faults
from autorec_jax.runtime import parallel
from autorec_jax.runtime import resources
from autorec_jax.runtime.signals import Interrupted, StopSignal
from autorec_jax.training import fast_path
from autorec_jax.training import metrics
from autorec_jax.training import noise as noise_lib
from autorec_jax.training import optim
from autorec_jax.training import data_defaults
from autorec_jax.training import stopping as stopping_lib
from autorec_jax.training import workdir as workdir_lib
from autorec_jax.training.epoch_checkpoints import EpochCheckpoints
from autorec_jax.training.position import Position
from autorec_jax.training.step import init_state, make_train_step



def model_inputs(cfg, data: "RunData"):
  """(Preprocessor fitted on train, the train part in model units as a CSR matrix
  with a row per example of `model.orientation`); `preprocess.scale` unset is decided
  by the rating scale (`data_defaults.choose_scale`), `preprocess.bias=auto` by the
  ratings per user and item (`data_defaults.resolve_sparsity`)."""
  scale = data_defaults.choose_scale(cfg.preprocess.scale, data.loaded.rating_scale)
  if cfg.preprocess.bias == "auto":
    cfg, _ = data_defaults.resolve_sparsity(cfg, data.train, data.loaded.rating_scale)
  pre = preprocess.Preprocessor.fit(
      data.train, orientation=cfg.model.orientation, scale=scale.on,
      rating_scale=data.loaded.rating_scale, bias=cfg.preprocess.bias)
  return pre, pre.transform(data.train).to_csr(cfg.model.orientation)


def choose_input_path(cfg, train_csr: Any = None) -> str:
  """'dense' or 'sparse' for `model.input_path`, checked against this run's devices
  (`auto` also looks at the density of `train_csr`)."""
  density = None
  if train_csr is not None and train_csr.shape[0] * train_csr.shape[1]:
    density = train_csr.nnz / (train_csr.shape[0] * train_csr.shape[1])
  path, why = fast_path.choose_input_path(cfg.model.get("input_path", "dense"),
                                         num_devices=jax.device_count(), density=density)
  logging.info("input path: %s (%s)", path, why)
  return path


def make_noise(cfg, pre: preprocess.Preprocessor,
               rating_scale: tuple[float, float]) -> noise_lib.NoiseConfig:
  """The config's noise, with salt-and-pepper values at the scale's ends in model units."""
  return noise_lib.NoiseConfig(
      masking=cfg.noise.masking, salt_pepper=cfg.noise.salt_pepper,
      gaussian=cfg.noise.gaussian, gaussian_std=cfg.noise.gaussian_std,
      low=pre.to_model_units(rating_scale[0]), high=pre.to_model_units(rating_scale[1]))


def train_and_evaluate(cfg, workdir: str, *, init_params: Any = None) -> dict:
  """Trains the configured model, writes the workdir, returns the final results.

  `init_params` (a params pytree of the configured model's structure) starts a fresh
  run from given weights instead of the initializer, e.g. the stacked network
  assembled from pre-trained layers; a resumed run ignores it.
  """
  config_checks.validate(cfg)
  with workdir_lib.open_run(cfg, workdir, process_index=jax.process_index()):
    return _train_and_evaluate(cfg, workdir, init_params)


def _train_and_evaluate(cfg, workdir: str, init_params: Any) -> dict:
  compiled = metrics.compile_seconds()
  data = load_data(cfg)
  cfg, sparsity = data_defaults.resolve_sparsity(cfg, data.train, data.loaded.rating_scale)
  logging.info("%s", sparsity.why)
  resuming = workdir_lib.has_training(workdir)
  if resuming:  # on the data it was trained on
    snapshot.check_fingerprint(workdir, data.loaded.files, data)
  orientation = cfg.model.orientation
  split_summary = data.split.summary(data.loaded.ratings)
  logging.info("data %s: %d users x %d items, split %s", data.loaded.ratings.source,
               data.loaded.ratings.num_users, data.loaded.ratings.num_items, split_summary)

  mesh = parallel.make_mesh()
  parallel.check_batch_size(cfg.train.batch_size)
  parallel.check_batch_size(cfg.eval.batch_size, "eval.batch_size")
  repl, sharded = parallel.replicated(mesh), parallel.data_sharded(mesh)
  pre, train_csr = model_inputs(cfg, data)
  scale_choice = data_defaults.choose_scale(cfg.preprocess.scale, data.loaded.rating_scale)
  if jax.process_index() == 0 and not (  # what serving needs (a resumed run has it)
      resuming and os.path.exists(os.path.join(workdir, snapshot.SNAPSHOT_FILE))):
    snapshot.save(workdir, data, pre)
    snapshot.write_fingerprint(workdir, data.loaded.files)
  input_path = choose_input_path(cfg, train_csr)
  noise = make_noise(cfg, pre, data.loaded.rating_scale)
  batcher = CSRBatcher(train_csr, cfg.train.batch_size, seed=cfg.seed,
                       process_index=jax.process_index(),
                       process_count=jax.process_count(), prefetch=cfg.train.prefetch,
                       entries=input_path == "sparse",
                       dense=input_path == "dense" or noise.active)
  eval_batcher = CSRBatcher(train_csr, cfg.eval.batch_size, seed=cfg.seed,
                            process_index=jax.process_index(),
                            process_count=jax.process_count(), prefetch=cfg.train.prefetch)

  model = make_model(cfg.model, batcher.num_cols)
  # On CPU the fake devices of one process share the host's memory.
  resources.check_fits(
      resources.estimate(num_inputs=batcher.num_cols, hidden=model.hidden,
                         tied=model.tied, optimizer=cfg.optim.name,
                         batch_rows=batcher.local_batch_size // jax.local_device_count(),
                         eval_rows=eval_batcher.local_batch_size // jax.local_device_count()),
      resources.device_limit_bytes(), devices=jax.local_device_count())
  tx, schedule = optim.from_config(cfg.optim, batcher.num_train_batches)
  root_key = jax.random.key(cfg.seed)
  init_key, train_key = jax.random.split(root_key)
  del root_key
  state = init_state(model, tx, batcher.num_cols, init_key)
  if init_params is not None:
    state = state.replace(params=init_params, opt_state=tx.init(init_params))
  state = jax.device_put(state, repl)
  num_params = count_params(state.params)

  scale = data.loaded.rating_scale if cfg.eval.clip_predictions else (None, None)
  entries = input_path == "sparse"  # evaluate from entry lists too (one device)
  if entries:
    eval_step = jax.jit(evaluate.make_entries_eval_step(
        model, num_inputs=batcher.num_cols, clip_min=scale[0], clip_max=scale[1], pre=pre))
  else:
    eval_step = jax.jit(evaluate.make_eval_step(model, clip_min=scale[0], clip_max=scale[1],
                                                pre=pre),
                        in_shardings=(repl, sharded), out_shardings=repl)

  def make_evaluator(target):
    return evaluate.Evaluator(train=data.train, target=target, orientation=orientation,
                              batcher=eval_batcher, eval_step=eval_step, mesh=mesh,
                              rating_scale=scale if scale[0] is not None else None,
                              row_bias=pre.row_bias, entries=entries)

  lo, hi = data.loaded.rating_scale
  threshold = (cfg.eval.relevance_threshold if cfg.eval.relevance_threshold is not None
               else lo + 0.75 * (hi - lo))

  def forward(params, x_BxI, row_bias_B):
    out = model.apply({"params": params}, x_BxI, train=False)
    return out if pre.is_identity else pre.inverse(out, row_bias_B)

  def make_ranking(target):
    return ranking.RankingEvaluator(
        train=data.train, target=target, orientation=orientation, batcher=eval_batcher,
        forward=forward, mesh=mesh, ks=cfg.eval.ranking_ks, threshold=threshold,
        row_bias=pre.row_bias)

  has_valid = data.valid.num_ratings > 0
  valid_eval = make_evaluator(data.valid) if has_valid else None
  # Validation ranking only every `eval.ranking_every_epochs` (0: once, at the end, on
  # the best checkpoint): a ranking pass can cost more than an epoch of training.
  rank_every = cfg.eval.ranking_every_epochs
  valid_ranking = make_ranking(data.valid) if has_valid and rank_every else None
  manager = checkpoint.make_manager(workdir, keep_best=has_valid)
  writer_path = os.path.join(workdir, "metrics.jsonl")

  position = Position()
  manager, latest, restored, meta = checkpoint.restore_newest_intact(
      workdir, manager, state, keep_best=has_valid)
  if latest is not None:
    if "config" in meta:  # the run's own record, whatever config.json now says
      workdir_lib.refuse_other_config(workdir, meta["config"], cfg, f"checkpoint {latest}")
    state = restored
    position = Position.from_meta(meta)
    logging.info("resumed from the checkpoint at step %d (epoch %d, batch %d)", latest,
                 position.epoch, position.batch)
  position.config = json.loads(config_json(cfg))
  write_config(cfg, workdir)
  if jax.process_index() == 0:  # rows past the checkpoint (all of them, starting afresh)
    metrics.truncate_jsonl(writer_path, position.epoch)
  writer = metrics.MetricWriter(workdir)
  if latest is None:
    writer.write_hparams(flatten(json.loads(config_json(cfg))))

  fused_update = fast_path.choose_update(cfg.optim, model, num_devices=jax.device_count())

  def build_step(lr_scale: float):
    updates_per_step = 1 + cfg.train.refeed_steps
    tx_, schedule_ = optim.from_config(cfg.optim, batcher.num_train_batches,
                                       lr_scale=lr_scale, updates_per_step=updates_per_step)
    update = None
    if fused_update is not None:
      per_update, _ = optim.learning_rate_fn(cfg.optim, batcher.num_train_batches,
                                             lr_scale=lr_scale,
                                             updates_per_step=updates_per_step)
      update = fused_update(per_update)
    step_fn = make_train_step(model, tx_, refeed_steps=cfg.train.refeed_steps,
                              noise=noise, alpha=cfg.loss.alpha, beta=cfg.loss.beta,
                              sparse_input=input_path == "sparse",
                              num_inputs=batcher.num_cols, update=update)
    return jax.jit(step_fn, in_shardings=(repl, sharded, repl),
                   out_shardings=(repl, repl), donate_argnums=0), schedule_

  train_step, schedule = build_step(position.lr_scale)
  steps_per_epoch = batcher.num_train_batches
  if jax.process_index() == 0:
    name = console.data_name(cfg.data.name, data.loaded)
    print(console.run_line(name, data, orientation=orientation, hidden=model.hidden,
                           num_params=num_params, input_path=input_path, resumed=latest,
                           units=data_defaults.describe(scale_choice, cfg.preprocess.bias)),
          flush=True)
  progress = console.Progress(
      total=cfg.train.num_epochs * steps_per_epoch,
      done=min(position.epoch * steps_per_epoch + position.batch,
               cfg.train.num_epochs * steps_per_epoch),
      enabled=cfg.train.progress_bar and jax.process_index() == 0)
  saver = EpochCheckpoints(manager, every_secs=cfg.ckpt.every_secs)
  patience = cfg.train.patience if has_valid else 0
  stop = StopSignal()
  with stop.installed(), contextlib.closing(progress):
    epoch = position.epoch + 1
    while epoch <= cfg.train.num_epochs and not position.patience_ran_out(patience):
      t0 = time.perf_counter()
      try:
        state, position = _train_epoch(cfg, epoch, state, position, batcher, train_step,
                                       train_key, sharded, saver, stop, progress)
      except FloatingPointError as e:
        saver.flush()  # the best so far stays on disk, and is a state to roll back to
        state, position = _roll_back(cfg, e, manager, state, position)
        train_step, schedule = build_step(position.lr_scale)
        writer.write_scalars(int(state.step), {"epoch": position.epoch,
                                               "train/rollback_lr_scale": position.lr_scale})
        epoch = position.epoch + 1
        continue
      if stop.signum is not None:
        writer.close()
        raise Interrupted(stop.signum, position.epoch, position.batch)
      position.seconds.append(time.perf_counter() - t0)
      row = {"epoch": epoch, **position.epoch_means(),
             "train/lr": float(schedule(int(state.step) - 1)),
             "perf/epoch_secs": position.seconds[-1]}
      eval_metrics, improved = None, False
      eval_now = (epoch % cfg.train.eval_every_epochs == 0 or epoch == cfg.train.num_epochs)
      if has_valid and eval_now:
        t1 = time.perf_counter()
        result = valid_eval(state.params)
        faults.reached("eval")
        row.update({"valid/rmse": result["rmse"], "valid/mae": result["mae"]})
        row["perf/eval_secs"] = time.perf_counter() - t1  # the RMSE/MAE pass
        if valid_ranking is not None and epoch % rank_every == 0:
          t2 = time.perf_counter()
          row.update({f"valid/{k}": v for k, v in valid_ranking(state.params).items()})
          row["perf/ranking_secs"] = time.perf_counter() - t2
        eval_metrics = {"valid/rmse": result["rmse"]}
        improved = position.evaluated(epoch, result["rmse"])
      if eval_now and jax.process_index() == 0:
        progress.line(console.eval_line(
            epoch=epoch, num_epochs=cfg.train.num_epochs, loss=row.get("train/loss"),
            valid_rmse=row.get("valid/rmse"),
            best_rmse=position.best_rmse if has_valid else None,
            best_epoch=position.best_epoch if has_valid else None,
            seconds=time.perf_counter() - t0))
      position = position.next_epoch(epoch)
      writer.write_scalars(int(state.step), row)
      writer.flush()
      last = epoch == cfg.train.num_epochs or position.patience_ran_out(patience)
      saver.epoch_end(int(state.step), state, position.to_meta(row), eval_metrics,
                      improved=improved, last=last)
      epoch += 1
    saver.flush()

  stopping = stopping_lib.summary(position, patience=patience,
                                  num_epochs=cfg.train.num_epochs, has_valid=has_valid)
  if jax.process_index() == 0:
    progress.line(stopping_lib.console_line(stopping))
  results = final_results(cfg, data, manager, state, make_evaluator, make_ranking,
                           position.seconds, num_params, split_summary)
  results.update(stopping)
  results.update(data_defaults.scale_record(scale_choice, data.loaded.rating_scale))
  results.update(data_defaults.sparsity_record(sparsity))
  results["compile_seconds"] = metrics.compile_seconds() - compiled
  writer.close()
  return metrics.finish_results(results, workdir if jax.process_index() == 0 else None)


def _train_epoch(cfg, epoch, state, position, batcher, train_step, train_key, sharded,
                 saver, stop, progress):
  """Runs epoch `epoch` from `position.batch` on; returns (state, position) with the
  epoch's metric sums. Saves a mid-epoch checkpoint every `ckpt.every_steps` steps and
  when a stop signal arrives (then returns early)."""
  steps_per_epoch = batcher.num_train_batches
  position = dataclasses.replace(position, sums=dict(position.sums))
  pending = []
  shown = position.batch  # steps of this epoch already counted by the progress bar

  def drain():
    for m in jax.device_get(pending):
      for k, v in m.items():
        position.sums[k] = position.sums.get(k, 0.0) + float(v)
    pending.clear()
    metrics.check_finite(position.sums.get("train/loss", 0.0), what="train/loss",
                         epoch=epoch, step=int(state.step))

  every = cfg.ckpt.every_steps
  for batch in batcher.train_batches(epoch, start_batch=position.batch):
    state, step_metrics = train_step(state, parallel.to_global(batch, sharded), train_key)
    faults.reached("train_step")
    pending.append(step_metrics)
    position.batch += 1
    done = position.batch
    save_now = stop.signum is not None or (every and int(state.step) % every == 0
                                           and done < steps_per_epoch)
    if save_now or done % cfg.train.log_every_steps == 0 or done == steps_per_epoch:
      drain()
      progress.update(done - shown, loss=f"{position.sums['train/loss'] / done:.4f}")
      shown = done
    if save_now:
      position.epoch = epoch - 1
      saver.write(int(state.step), state, position.to_meta(), None)
      if stop.signum is not None:
        break
  drain()
  return state, position


def _roll_back(cfg, error: FloatingPointError, manager, state, position):
  """After a NaN/inf loss: stop (the default) or, with train.on_nan=rollback, restore
  the latest good checkpoint and go on with a lower learning rate."""
  latest = checkpoint.latest_step(manager)
  if cfg.train.on_nan != "rollback" or position.rollbacks >= cfg.train.max_rollbacks:
    raise error
  if latest is None:
    raise FloatingPointError(f"{error}; no checkpoint to roll back to yet") from error
  good, meta = checkpoint.restore(manager, latest, state)
  back = Position.from_meta(meta)
  back.lr_scale = position.lr_scale * cfg.train.rollback_lr_factor
  back.rollbacks = position.rollbacks + 1
  logging.warning("%s; rolled back to step %d with learning rate x%g (rollback %d of %d)",
                  error, latest, back.lr_scale, back.rollbacks, cfg.train.max_rollbacks)
  return good, back


def _strip(row: dict, prefix: str) -> dict:
  """The entries of `row` whose keys start with `prefix`, without it."""
  return {k[len(prefix):]: v for k, v in row.items() if k.startswith(prefix)}


def final_results(cfg, data, manager, state, make_evaluator, make_ranking, epoch_seconds,
                   num_params, split_summary) -> dict:
  best = checkpoint.best_step(manager)
  best_state, meta = checkpoint.restore(manager, best, state)
  test = make_evaluator(data.test)(best_state.params)
  shared = {}  # one item-based score matrix for both ranking passes
  test_ranking = make_ranking(data.test)(best_state.params, shared=shared)
  best_row = dict(meta["metrics"])
  if data.valid.num_ratings and not any(  # not measured while training
      k.startswith(f"valid/{m}@") for k in best_row for m in ranking.METRICS):
    best_row.update({f"valid/{k}": v for k, v in make_ranking(data.valid)(
        best_state.params, shared=shared).items()})
  results = {
      "test/rmse": test["rmse"], "test/mae": test["mae"], "test/count": test["count"],
      "test/cold_count": test["cold_count"],
      "valid/rmse": best_row.get("valid/rmse", float("nan")),
      "valid/mae": best_row.get("valid/mae", float("nan")),
      "best_epoch": int(meta["epoch"]), "best_step": int(best),
      "epochs_run": len(epoch_seconds),
      "seconds_per_epoch": statistics.median(epoch_seconds) if epoch_seconds else 0.0,
      "train_seconds": float(sum(epoch_seconds)),
      "num_params": num_params,
      "num_users": data.loaded.ratings.num_users, "num_items": data.loaded.ratings.num_items,
      "split": split_summary,
      # Every ranking metric asked for, null where it does not exist (no relevant
      # held-out rating, or no ranking pass for this model).
      **{f"{part}/{metric}@{k}": row.get(f"{metric}@{k}")
         for k in sorted(set(cfg.eval.ranking_ks)) for metric in ranking.METRICS
         for part, row in (("test", test_ranking), ("valid", _strip(best_row, "valid/")))},
  }
  logging.info("results: %s", results)
  return results
