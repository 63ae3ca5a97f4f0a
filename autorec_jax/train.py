"""The train step (with dense re-feeding) and the train-and-evaluate loop.

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
import shutil
import signal
import statistics
import threading
import time
from typing import Any, Callable

import flax
import jax
import jax.numpy as jnp
import optax
from absl import logging

from autorec_jax import checkpoint, config_checks, evaluate, faults, losses, metrics, optim
from autorec_jax import fused_sgd as fused_sgd_lib
from autorec_jax import parallel
from autorec_jax import noise as noise_lib
from autorec_jax import preprocess, ranking, resources
from autorec_jax import sparse_input as sparse_lib
from autorec_jax.data import datasets, splits
from autorec_jax.data.batching import CSRBatcher
from autorec_jax.models import autoencoder as ae
from autorec_jax.models.autoencoder import AutoEncoder, count_params


@flax.struct.dataclass
class TrainState:
  """What a checkpoint holds: the step count, parameters and optimizer state."""

  step: jax.Array
  params: Any
  opt_state: Any


def hidden_widths(model_cfg, num_inputs: int) -> tuple[int, ...]:
  """model.hidden, or model.hidden_fractions of the input width when those are set."""
  if model_cfg.hidden_fractions:
    return tuple(max(1, int(round(f * num_inputs))) for f in model_cfg.hidden_fractions)
  return tuple(model_cfg.hidden)


def make_model(model_cfg, num_inputs: int | None = None) -> AutoEncoder:
  """The configured autoencoder (num_inputs is needed only for hidden_fractions)."""
  if model_cfg.hidden_fractions and num_inputs is None:
    raise ValueError("model.hidden_fractions needs the input width")
  hidden = hidden_widths(model_cfg, num_inputs or 0)
  return AutoEncoder(hidden=hidden, activation=model_cfg.activation,
                     output_activation=model_cfg.output_activation,
                     dropout=model_cfg.dropout, tied=model_cfg.tied,
                     kernel_init=model_cfg.kernel_init,
                     compute_dtype=model_cfg.get("compute_dtype", "float32"))


def init_state(model: AutoEncoder, tx: optax.GradientTransformation, num_inputs: int,
               init_key: jax.Array) -> TrainState:
  params = model.init(init_key, jnp.zeros((1, num_inputs), jnp.float32), train=False)["params"]
  return TrainState(step=jnp.zeros((), jnp.int32), params=params, opt_state=tx.init(params))


def make_train_step(model: AutoEncoder, tx: optax.GradientTransformation, *,
                    refeed_steps: int, noise: noise_lib.NoiseConfig | None = None,
                    alpha: float = 1.0, beta: float = 1.0,
                    sparse_input: bool = False, num_inputs: int | None = None,
                    fused_sgd: "fused_sgd_lib.FusedSgd | None" = None,
                    deferred_kernel_grads: bool = True) -> Callable:
  """(state, batch, key) -> (state, metrics): one update on the sparse batch, then
  `refeed_steps` dense re-feeding updates (DeepRec section 2.2).

  With `noise`, the sparse pass sees a corrupted input and fits the clean one with
  Strub & Mary's alpha/beta loss (alpha on corrupted, beta on the other known
  entries). Re-feeding treats the previous output f(x) (no gradient through it) as a
  new dense example and fits f(f(x)) to it with every entry of the real rows
  observed; each pass draws its own dropout mask. With `sparse_input` (batches from
  `CSRBatcher(entries=True)`, dense "x"/"mask" only where noise needs them; the input
  width `num_inputs` is then required) the sparse pass computes the first layer from
  the batch's entry lists (autorec_jax.sparse_input; noise only changes known
  entries, so they still cover the input) and the loss and the output layer's
  gradients at those entries only (the dense output is computed only when a
  re-feeding pass needs it as its input); re-feeding passes are dense. With
  `fused_sgd` (the same update as `tx`, see autorec_jax.fused_sgd) the updates run
  natively, one pass per parameter array; on the sparse pass, with
  `deferred_kernel_grads`, the first and output kernels' gradients are never built:
  the update sums each of their rows from the batch's entries (AutoEncoder's
  `deferred_kernel_grads`; the same sums, so the same parameters, with two
  [n, w_1] arrays less written and read per step).
  """
  denoise = noise is not None and noise.active
  output = "entries+dense" if refeed_steps else "entries"
  if sparse_input and not num_inputs:
    raise ValueError("the sparse input path needs num_inputs, the input width")

  def objective(pred, target, mask, corrupted):
    """Masked MSE, or Strub & Mary's alpha/beta loss where `corrupted` is given;
    dense rows [B, I] or values at the entries [E] alike."""
    if corrupted is None:
      return losses.masked_mse(pred, target, mask)
    total, count = losses.denoising_sse(pred, target, mask, corrupted, alpha=alpha,
                                        beta=beta)
    return total / jnp.maximum(count, 1.0)

  def loss_fn(params, perturbations, x, y, m, c, dropout_key):
    """(loss, (the dense output a re-feeding pass takes as input, else None; the last
    hidden layer where `perturbations` are given, else None)); x is dense [B, I]
    (y, m, c alike) or SparseRows (y, m, c at its entries, [E]). `perturbations`
    (sparse rows only) feed the first and output kernels' gradients out instead of
    building them (AutoEncoder's `deferred_kernel_grads`)."""
    if not isinstance(x, sparse_lib.SparseRows):
      pred_BxI = model.apply({"params": params}, x, train=True,
                             rngs={"dropout": dropout_key})
      return objective(pred_BxI, y, m, c), (pred_BxI, None)
    deferred = perturbations is not None
    variables = {"params": params, **({"perturbations": perturbations} if deferred else {})}
    out, sown = model.apply(variables, x, train=True, output=output,
                            deferred_kernel_grads=deferred, rngs={"dropout": dropout_key},
                            mutable=["intermediates"])
    pred_E, pred_BxI = out if refeed_steps else (out, None)
    h_BxH = sown["intermediates"][ae.LAST_HIDDEN][0] if deferred else None
    return objective(pred_E, y, m, c), (pred_BxI, h_BxH)

  def deferred_update(state, x, y, m, c, dropout_key):
    """update() on a sparse pass with the two kernels' gradients summed in the update."""
    perturbations = {
        ae.FIRST_LAYER_PRODUCT: jnp.zeros((x.shape[0], model.hidden[0]), jnp.float32),
        ae.OUTPUT_AT_ENTRIES: jnp.zeros(x.row.shape, jnp.float32)}
    (loss, (pred_BxI, h_BxH)), (grads, at) = jax.value_and_grad(
        loss_fn, argnums=(0, 1), has_aux=True)(
            state.params, perturbations, x, y, m, c, dropout_key)
    lists = (x.row, x.col, x.count)
    first = fused_sgd_lib.EntriesGradient(x.val, at[ae.FIRST_LAYER_PRODUCT], *lists)
    output_layer = fused_sgd_lib.EntriesGradient(at[ae.OUTPUT_AT_ENTRIES], h_BxH, *lists)
    if model.tied:  # the output kernel is the first one: the two gradients summed
      entry_grads = {ae.INPUT_KERNEL: (first, output_layer)}
    else:
      entry_grads = {ae.INPUT_KERNEL: first,
                     ae.output_kernel_name(model.hidden): output_layer}
    # The output kernel is read until its bias's gradient and the dense output are
    # computed; updated after them, it is updated in place, not copied (twice).
    out_bias = grads[ae.output_bias_name(model.hidden)]
    params, opt_state, grad_norm = fused_sgd.apply(grads, state.opt_state, state.params,
                                                   entry_grads, after=(out_bias, pred_BxI))
    return state.replace(params=params, opt_state=opt_state), loss, grad_norm, pred_BxI

  defer = deferred_kernel_grads and sparse_input and fused_sgd is not None

  def update(state, x, y, m, c, dropout_key):
    """(new state, loss, the gradient's global norm, the dense output or None)."""
    if defer and isinstance(x, sparse_lib.SparseRows):
      return deferred_update(state, x, y, m, c, dropout_key)
    (loss, (pred_BxI, _)), grads = jax.value_and_grad(loss_fn, has_aux=True)(
        state.params, None, x, y, m, c, dropout_key)
    if fused_sgd is not None:
      params, opt_state, grad_norm = fused_sgd.apply(grads, state.opt_state, state.params)
    else:
      updates, opt_state = tx.update(grads, state.opt_state, state.params)
      params = optax.apply_updates(state.params, updates)
      grad_norm = optax.tree.norm(grads)
    return state.replace(params=params, opt_state=opt_state), loss, grad_norm, pred_BxI

  def sparse_inputs(batch, keys):
    """(input SparseRows, target, mask, corrupted) at the batch's listed entries."""
    row_E, col_E, count = batch["entry_row"], batch["entry_col"], batch["entry_count"]
    y_E = batch["entry_val"]
    x = sparse_lib.SparseRows(row_E, col_E, y_E, count,
                              shape=(batch["row_mask"].shape[0], num_inputs))
    m_E = x.valid()
    if not denoise:
      return x, y_E, m_E, None
    # Corrupted like the dense path (same draws), then read at the entries.
    m_BxI = batch["mask"] * batch["row_mask"][:, None]
    in_BxI, c_BxI = noise_lib.corrupt(batch["x"], m_BxI, noise, keys[1])
    return x.replace(val=in_BxI[row_E, col_E]), y_E, m_E, c_BxI[row_E, col_E]

  def train_step(state, batch, key):
    keys = jax.random.split(jax.random.fold_in(key, state.step), 2 + refeed_steps)
    row_mask_B = batch["row_mask"]
    if sparse_input:
      x, y, m, c = sparse_inputs(batch, keys)
    else:
      y = batch["x"]
      m = batch["mask"] * row_mask_B[:, None]
      x, c = y, None
      if denoise:
        x, c = noise_lib.corrupt(y, m, noise, keys[1])
    state, loss, grad_norm, pred_BxI = update(state, x, y, m, c, keys[0])
    out = {"train/loss": loss, "train/grad_norm": grad_norm,
           "train/rows": jnp.sum(row_mask_B)}
    refeed_losses = []
    for k in range(refeed_steps):  # Python loop: the count is fixed when jitted.
      full_BxI = jnp.broadcast_to(row_mask_B[:, None], pred_BxI.shape)
      dense_BxI = jax.lax.stop_gradient(pred_BxI) * full_BxI
      state, refeed_loss, _, pred_BxI = update(state, dense_BxI, dense_BxI, full_BxI,
                                               None, keys[2 + k])
      refeed_losses.append(refeed_loss)
    if refeed_losses:
      out["train/refeed_loss"] = jnp.mean(jnp.stack(refeed_losses))
    return state.replace(step=state.step + 1), out

  return train_step


def model_inputs(cfg, data: "RunData"):
  """(Preprocessor fitted on train, the train part in model units as a CSR matrix
  with a row per example of `model.orientation`)."""
  pre = preprocess.Preprocessor.fit(
      data.train, orientation=cfg.model.orientation, scale=cfg.preprocess.scale,
      rating_scale=data.loaded.rating_scale, bias=cfg.preprocess.bias)
  return pre, pre.transform(data.train).to_csr(cfg.model.orientation)


def choose_input_path(cfg, train_csr: Any = None) -> str:
  """'dense' or 'sparse' for `model.input_path`, checked against this run's devices
  (`auto` also looks at the density of `train_csr`)."""
  density = None
  if train_csr is not None and train_csr.shape[0] * train_csr.shape[1]:
    density = train_csr.nnz / (train_csr.shape[0] * train_csr.shape[1])
  try:
    path, why = sparse_lib.resolve(cfg.model.get("input_path", "dense"),
                                   num_devices=jax.device_count(), density=density)
  except sparse_lib.KernelUnavailable as e:
    raise config_checks.ConfigError(str(e)) from e
  logging.info("input path: %s (%s)", path, why)
  return path


def make_noise(cfg, pre: preprocess.Preprocessor,
               rating_scale: tuple[float, float]) -> noise_lib.NoiseConfig:
  """The config's noise, with salt-and-pepper values at the scale's ends in model units."""
  return noise_lib.NoiseConfig(
      masking=cfg.noise.masking, salt_pepper=cfg.noise.salt_pepper,
      gaussian=cfg.noise.gaussian, gaussian_std=cfg.noise.gaussian_std,
      low=pre.to_model_units(rating_scale[0]), high=pre.to_model_units(rating_scale[1]))


@dataclasses.dataclass
class RunData:
  """A run's data: what was loaded, its split, and the three parts."""

  loaded: Any
  split: splits.Split
  train: Any
  valid: Any
  test: Any


def load_data(cfg) -> RunData:
  """Loads and splits the data a config names (the same split on every call)."""
  loaded = datasets.load(cfg.data)
  ratings = loaded.ratings
  split = splits.make_split(
      ratings.num_ratings, test_fraction=cfg.data.test_fraction,
      num_folds=cfg.data.num_folds, fold=cfg.data.fold,
      valid_fraction=cfg.data.valid_fraction, seed=cfg.data.seed,
      predefined_test=loaded.is_predefined_test,
      predefined_valid=loaded.is_predefined_valid)
  return RunData(loaded, split, ratings.subset(split.train), ratings.subset(split.valid),
               ratings.subset(split.test))


def config_json(cfg) -> str:
  """The resolved config as the JSON saved in a workdir."""
  return cfg.to_json_best_effort(indent=2, sort_keys=True)


def write_config(cfg, workdir: str) -> None:
  """Saves the resolved config as workdir/config.json (process 0, atomically, since
  other processes read it to check a resumed run)."""
  if jax.process_index() != 0:
    return
  tmp = os.path.join(workdir, "config.json.tmp")
  with open(tmp, "w", encoding="utf-8") as f:
    f.write(config_json(cfg))
  os.replace(tmp, os.path.join(workdir, "config.json"))


RUN_FILES = ("checkpoints", "metrics.jsonl", "results.json", "config.json", "tensorboard")


def clear_workdir(workdir: str) -> None:
  """Deletes a previous run's files from `workdir` (and nothing else in it)."""
  for name in RUN_FILES:
    path = os.path.join(workdir, name)
    if os.path.isdir(path):
      shutil.rmtree(path)
    elif os.path.exists(path):
      os.remove(path)


def check_workdir(cfg, workdir: str) -> None:
  """Refuses to resume a workdir that holds a run of a different config.

  Only `train.num_epochs` may differ (to extend a finished run). A field the saved
  config lacks (added by a later version) counts as its default.
  """
  from autorec_jax.config_schema import base_config  # pylint: disable=import-outside-toplevel
  path = os.path.join(workdir, "config.json")
  if not os.path.exists(path):
    return
  with open(path, encoding="utf-8") as f:
    old = {**_flatten(json.loads(config_json(base_config()))), **_flatten(json.load(f))}
  new = _flatten(json.loads(config_json(cfg)))
  diff = sorted(k for k in old.keys() | new.keys()
                if old.get(k) != new.get(k) and k != "train.num_epochs")
  if diff:
    raise config_checks.ConfigError(
        f"{workdir} holds a run with a different config ({', '.join(diff[:8])} differ); "
        "pass the same config to resume it, use another --workdir, or --overwrite to "
        "delete that run")


def _flatten(d: dict, prefix: str = "") -> dict:
  out = {}
  for k, v in d.items():
    if isinstance(v, dict):
      out.update(_flatten(v, f"{prefix}{k}."))
    else:
      out[f"{prefix}{k}"] = v
  return out


def train_and_evaluate(cfg, workdir: str, *, init_params: Any = None) -> dict:
  """Trains the configured model, writes the workdir, returns the final results.

  `init_params` (a params pytree of the configured model's structure) starts a fresh
  run from given weights instead of the initializer, e.g. the stacked network
  assembled from pre-trained layers; a resumed run ignores it.
  """
  config_checks.validate(cfg)
  os.makedirs(workdir, exist_ok=True)
  check_workdir(cfg, workdir)
  write_config(cfg, workdir)

  data = load_data(cfg)
  orientation = cfg.model.orientation
  split_summary = data.split.summary(data.loaded.ratings)
  logging.info("data %s: %d users x %d items, split %s", data.loaded.ratings.source,
               data.loaded.ratings.num_users, data.loaded.ratings.num_items, split_summary)

  mesh = parallel.make_mesh()
  parallel.check_batch_size(cfg.train.batch_size)
  parallel.check_batch_size(cfg.eval.batch_size, "eval.batch_size")
  repl, sharded = parallel.replicated(mesh), parallel.data_sharded(mesh)
  pre, train_csr = model_inputs(cfg, data)
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
  eval_step = jax.jit(evaluate.make_eval_step(model, clip_min=scale[0], clip_max=scale[1],
                                              pre=pre),
                      in_shardings=(repl, sharded), out_shardings=repl)

  def make_evaluator(target):
    return evaluate.Evaluator(train=data.train, target=target, orientation=orientation,
                              batcher=eval_batcher, eval_step=eval_step, mesh=mesh,
                              rating_scale=scale if scale[0] is not None else None,
                              row_bias=pre.row_bias)

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
  valid_ranking = make_ranking(data.valid) if has_valid else None
  manager = checkpoint.make_manager(workdir, keep_best=has_valid)
  writer_path = os.path.join(workdir, "metrics.jsonl")

  position = _Position()
  latest = checkpoint.latest_step(manager)
  if latest is not None:
    state, meta = checkpoint.restore(manager, latest, state)
    position = _Position.from_meta(meta)
    if jax.process_index() == 0:
      metrics.truncate_jsonl(writer_path, position.epoch)
    logging.info("resumed from the checkpoint at step %d (epoch %d, batch %d)", latest,
                 position.epoch, position.batch)
  writer = metrics.MetricWriter(workdir)
  if latest is None:
    writer.write_hparams(_flatten(json.loads(config_json(cfg))))

  fused, why = fused_sgd_lib.applies(cfg.optim, num_devices=jax.device_count())
  logging.info("optimizer update: %s", "native, fused (autorec_jax.fused_sgd)" if fused
               else f"optax ({why})")

  def build_step(lr_scale: float):
    updates_per_step = 1 + cfg.train.refeed_steps
    tx_, schedule_ = optim.from_config(cfg.optim, batcher.num_train_batches,
                                       lr_scale=lr_scale, updates_per_step=updates_per_step)
    fused_ = None
    if fused:
      per_update, _ = optim.learning_rate_fn(cfg.optim, batcher.num_train_batches,
                                             lr_scale=lr_scale,
                                             updates_per_step=updates_per_step)
      fused_ = fused_sgd_lib.FusedSgd(momentum=cfg.optim.momentum, learning_rate=per_update)
    step_fn = make_train_step(model, tx_, refeed_steps=cfg.train.refeed_steps,
                              noise=noise, alpha=cfg.loss.alpha, beta=cfg.loss.beta,
                              sparse_input=input_path == "sparse",
                              num_inputs=batcher.num_cols, fused_sgd=fused_)
    return jax.jit(step_fn, in_shardings=(repl, sharded, repl),
                   out_shardings=(repl, repl), donate_argnums=0), schedule_

  train_step, schedule = build_step(position.lr_scale)
  stop = _StopSignal()
  with stop.installed():
    epoch = position.epoch + 1
    while epoch <= cfg.train.num_epochs:
      t0 = time.perf_counter()
      try:
        state, position = _train_epoch(cfg, epoch, state, position, batcher, train_step,
                                       train_key, sharded, manager, stop)
      except FloatingPointError as e:
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
      eval_metrics = None
      if has_valid and (epoch % cfg.train.eval_every_epochs == 0
                        or epoch == cfg.train.num_epochs):
        t1 = time.perf_counter()
        result = valid_eval(state.params)
        faults.reached("eval")
        row.update({"valid/rmse": result["rmse"], "valid/mae": result["mae"]})
        t2 = time.perf_counter()
        row.update({f"valid/{k}": v for k, v in valid_ranking(state.params).items()})
        row["perf/eval_secs"] = t2 - t1  # the RMSE/MAE pass
        row["perf/ranking_secs"] = time.perf_counter() - t2
        eval_metrics = {"valid/rmse": result["rmse"]}
      position = position.next_epoch(epoch)
      writer.write_scalars(int(state.step), row)
      writer.flush()
      checkpoint.save(manager, int(state.step), state, position.to_meta(row), eval_metrics)
      epoch += 1

  results = _final_results(cfg, data, manager, state, make_evaluator, make_ranking,
                           position.seconds, num_params, split_summary)
  writer.close()
  if jax.process_index() == 0:
    tmp = os.path.join(workdir, "results.json.tmp")
    with open(tmp, "w", encoding="utf-8") as f:
      json.dump(results, f, indent=2, sort_keys=True)
    os.replace(tmp, os.path.join(workdir, "results.json"))
  return results


class Interrupted(Exception):
  """SIGTERM/SIGINT stopped training after saving a checkpoint; rerun to resume."""

  def __init__(self, signum: int, epoch: int, batch: int):
    self.signum = signum
    super().__init__(
        f"stopped by {signal.Signals(signum).name} after {epoch} epochs and {batch} batches "
        "of the next; a checkpoint was saved: run the same command to resume")


class _StopSignal:
  """Turns SIGTERM/SIGINT into a flag the loop checks after each step."""

  def __init__(self):
    self.signum: int | None = None

  def _handle(self, signum, frame):
    del frame
    self.signum = signum

  @contextlib.contextmanager
  def installed(self):
    if threading.current_thread() is not threading.main_thread():
      yield self
      return
    previous = {s: signal.signal(s, self._handle) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
      yield self
    finally:
      for s, handler in previous.items():
        signal.signal(s, handler)


@dataclasses.dataclass
class _Position:
  """Where training is: completed epochs, batches into the next one, and that partial
  epoch's metric sums, so a resumed run continues exactly where the checkpoint was."""

  epoch: int = 0
  batch: int = 0
  sums: dict = dataclasses.field(default_factory=dict)
  seconds: list = dataclasses.field(default_factory=list)
  lr_scale: float = 1.0
  rollbacks: int = 0

  @classmethod
  def from_meta(cls, meta: dict) -> "_Position":
    return cls(epoch=int(meta["epoch"]), batch=int(meta.get("batch", 0)),
               sums=dict(meta.get("sums", {})), seconds=list(meta.get("epoch_seconds", [])),
               lr_scale=float(meta.get("lr_scale", 1.0)),
               rollbacks=int(meta.get("rollbacks", 0)))

  def to_meta(self, row: dict | None = None) -> dict:
    meta = {"epoch": self.epoch, "batch": self.batch, "sums": self.sums,
            "epoch_seconds": self.seconds, "lr_scale": self.lr_scale,
            "rollbacks": self.rollbacks}
    if row is not None:
      meta["metrics"] = row
    return meta

  def epoch_means(self) -> dict:
    steps = max(self.batch, 1)
    return {k: v / steps for k, v in self.sums.items() if k != "train/rows"}

  def next_epoch(self, epoch: int) -> "_Position":
    return dataclasses.replace(self, epoch=epoch, batch=0, sums={})


def _train_epoch(cfg, epoch, state, position, batcher, train_step, train_key, sharded,
                 manager, stop):
  """Runs epoch `epoch` from `position.batch` on; returns (state, position) with the
  epoch's metric sums. Saves a mid-epoch checkpoint every `ckpt.every_steps` steps and
  when a stop signal arrives (then returns early)."""
  from tqdm import tqdm  # pylint: disable=import-outside-toplevel

  steps_per_epoch = batcher.num_train_batches
  show = cfg.train.progress_bar and jax.process_index() == 0
  bar = tqdm(total=steps_per_epoch, initial=position.batch, disable=not show, leave=False,
             desc=f"epoch {epoch}/{cfg.train.num_epochs}", dynamic_ncols=True)
  position = dataclasses.replace(position, sums=dict(position.sums))
  pending = []
  start = time.perf_counter()

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
      rows_per_sec = position.sums.get("train/rows", 0.0) / max(
          time.perf_counter() - start, 1e-9)
      bar.set_postfix(loss=f"{position.sums['train/loss'] / done:.4f}",
                      rows_per_s=f"{rows_per_sec:.0f}")
    if save_now:
      position.epoch = epoch - 1
      checkpoint.save(manager, int(state.step), state, position.to_meta(), None)
      if stop.signum is not None:
        break
    bar.update(1)
  drain()
  bar.close()
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
  back = _Position.from_meta(meta)
  back.lr_scale = position.lr_scale * cfg.train.rollback_lr_factor
  back.rollbacks = position.rollbacks + 1
  logging.warning("%s; rolled back to step %d with learning rate x%g (rollback %d of %d)",
                  error, latest, back.lr_scale, back.rollbacks, cfg.train.max_rollbacks)
  return good, back


def _final_results(cfg, data, manager, state, make_evaluator, make_ranking, epoch_seconds,
                   num_params, split_summary) -> dict:
  best = checkpoint.best_step(manager)
  best_state, meta = checkpoint.restore(manager, best, state)
  test = make_evaluator(data.test)(best_state.params)
  test_ranking = make_ranking(data.test)(best_state.params)
  best_row = meta["metrics"]
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
      **{f"test/{k}": v for k, v in test_ranking.items()},
      **{k: v for k, v in best_row.items() if k.startswith("valid/") and "@" in k},
  }
  logging.info("results: %s", results)
  return results
