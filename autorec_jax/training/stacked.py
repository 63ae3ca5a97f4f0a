"""Layer-wise stacked training, then fine-tuning (Strub & Mary 2015, figure 1).

For a model with two hidden layers (h1, h2) on inputs of width n:

1. outer: train the autoencoder n-h1-n on the ratings (its own hyperparameters,
   `stacked.outer.*`), keep its best-by-validation checkpoint;
2. inner: feed every train row through the outer encoder to get clean codes, and train
   the autoencoder h1-h2-h1 on those dense codes (`stacked.inner.*`);
3. assemble n-h1-h2-h1-n from the outer layers around the inner ones and fine-tune
   the whole network with the run's main optim/loss/noise settings.

Each stage is a workdir of its own under the run's workdir (`stage1_outer/`,
`stage2_inner/`, `stage3_finetune/`, each with metrics.jsonl), so every stage's losses
are logged and a killed run resumes at the stage and epoch it reached. The run's
results.json is the fine-tuned model's, with the stages' summaries under "stages".
"""

from __future__ import annotations

import json
import os
import shutil

import jax
import numpy as np
import scipy.sparse as sp

from autorec_jax.artifacts import checkpoint
from autorec_jax.artifacts import run_config
from autorec_jax.config import checks as config_checks
from autorec_jax.data import preprocess
from autorec_jax.data import run_data as run_data_lib
from autorec_jax.models import registry as model_registry
from autorec_jax.models.autoencoder import ACTIVATIONS, AutoEncoder
from autorec_jax.training import loop as train
from autorec_jax.training import step as train_step_lib
from autorec_jax.training import workdir as workdir_lib


def _stage_config(cfg, stage: str, hidden: tuple[int, ...], output_activation: bool):
  """A copy of the run's config for one pre-training stage."""
  st = cfg.stacked[stage]
  out = cfg.copy_and_resolve_references()
  with out.unlocked():
    out.stacked.enabled = False
    out.model.hidden = hidden
    out.model.hidden_fractions = ()
    out.model.output_activation = output_activation
    out.model.dropout = 0.0
    out.optim.learning_rate = st.learning_rate
    out.optim.weight_decay = st.weight_decay
    out.optim.schedule = "inverse_time"
    out.optim.decay_rate = st.decay_rate
    out.loss.alpha, out.loss.beta = st.alpha, st.beta
    out.noise.masking, out.noise.salt_pepper = st.masking, st.salt_pepper
    out.noise.gaussian, out.noise.gaussian_std = st.gaussian, st.gaussian_std
    out.train.num_epochs = st.num_epochs
    out.train.refeed_steps = 0
  return out


def _finetune_config(cfg):
  out = cfg.copy_and_resolve_references()
  with out.unlocked():
    out.stacked.enabled = False
  return out


def _codes_matrix(codes_RxH: np.ndarray) -> sp.csr_matrix:
  """Dense codes as a CSR matrix with every entry stored (a code may be exactly 0)."""
  rows, width = codes_RxH.shape
  indptr = np.arange(0, rows * width + 1, width, dtype=np.int64)
  indices = np.tile(np.arange(width, dtype=np.int32), rows)
  return sp.csr_matrix((codes_RxH.ravel().astype(np.float32), indices, indptr),
                       shape=(rows, width))


def _encode(outer_params, activation: str, x_csr: sp.csr_matrix,
            batch_size: int = 1024) -> np.ndarray:
  """Clean first-layer codes of every row that has train ratings."""
  act = ACTIVATIONS[activation]
  kernel, bias = AutoEncoder.first_layer(outer_params)
  encode = jax.jit(lambda x: act(x @ kernel + bias[None, :]))
  rows = np.flatnonzero(np.diff(x_csr.indptr) > 0)
  out = [np.asarray(encode(x_csr[rows[s:s + batch_size]].toarray()))
         for s in range(0, len(rows), batch_size)]
  return np.concatenate(out) if out else np.zeros((0, kernel.shape[1]), np.float32)


def _train_inner(cfg_inner, codes: np.ndarray, workdir: str) -> dict:
  """Fits the inner autoencoder to the codes; returns its final params."""
  from autorec_jax.training import metrics  # pylint: disable=import-outside-toplevel
  from autorec_jax.training import optim
  from autorec_jax.runtime import parallel
  from autorec_jax.data.batching import CSRBatcher  # pylint: disable=import-outside-toplevel

  os.makedirs(workdir, exist_ok=True)
  manager = checkpoint.make_manager(workdir, keep_best=False)
  mesh = parallel.make_mesh()
  repl, sharded = parallel.replicated(mesh), parallel.data_sharded(mesh)
  batcher = CSRBatcher(_codes_matrix(codes), cfg_inner.train.batch_size, seed=cfg_inner.seed,
                       process_index=jax.process_index(), process_count=jax.process_count(),
                       prefetch=cfg_inner.train.prefetch)
  model = model_registry.make_model(cfg_inner.model, batcher.num_cols)
  tx, schedule = optim.from_config(cfg_inner.optim, batcher.num_train_batches)
  init_key, train_key = jax.random.split(jax.random.key(cfg_inner.seed + 1))
  state = jax.device_put(train_step_lib.init_state(model, tx, batcher.num_cols, init_key), repl)
  step = jax.jit(train_step_lib.make_train_step(
      model, tx, refeed_steps=0,
      noise=train.make_noise(cfg_inner, _unit_pre(), (-1.0, 1.0)),
      alpha=cfg_inner.loss.alpha, beta=cfg_inner.loss.beta),
      in_shardings=(repl, sharded, repl), out_shardings=(repl, repl), donate_argnums=0)
  start = checkpoint.latest_step(manager) or 0
  if start:
    state, _ = checkpoint.restore(manager, start, state)
  writer = metrics.MetricWriter(workdir, tensorboard=False)
  for epoch in range(start + 1, cfg_inner.train.num_epochs + 1):
    step_metrics = []
    for batch in batcher.train_batches(epoch):
      state, m = step(state, parallel.to_global(batch, sharded), train_key)
      step_metrics.append(m)
    losses = [float(m["train/loss"]) for m in jax.device_get(step_metrics)]
    metrics.check_finite(losses[-1], what="stage2/train/loss", epoch=epoch,
                         step=int(state.step))
    row = {"epoch": epoch, "train/loss": float(np.mean(losses)),
           "train/lr": float(schedule(int(state.step) - 1))}
    writer.write_scalars(int(state.step), row)
    checkpoint.save(manager, epoch, state, {"epoch": epoch, "metrics": row}, None)
  writer.close()
  return jax.device_get(state.params)


def _unit_pre() -> preprocess.Preprocessor:
  return preprocess.Preprocessor(0.0, 1.0, np.zeros(0, np.float32), "user")


def assemble(outer: dict, inner: dict) -> dict:
  """n-h1-h2-h1-n params from the outer n-h1-n and inner h1-h2-h1 autoencoders."""
  return AutoEncoder.stack(outer, inner)


def train_stacked(cfg, workdir: str) -> dict:
  """Runs the three stages in `workdir` and returns the fine-tuned model's results."""
  config_checks.validate(cfg)
  with workdir_lib.open_run(cfg, workdir, process_index=jax.process_index()):
    run_config.write_config(cfg, workdir)
    return _train_stages(cfg, workdir)


def _train_stages(cfg, workdir: str) -> dict:
  data = run_data_lib.load_data(cfg)
  _, x_csr = train.model_inputs(cfg, data)
  h1, h2 = model_registry.hidden_widths(cfg.model, x_csr.shape[1])

  outer_dir = os.path.join(workdir, "stage1_outer")
  outer_cfg = _stage_config(cfg, "outer", (h1,), cfg.model.output_activation)
  outer_results = train.train_and_evaluate(outer_cfg, outer_dir)
  outer_params = _restore_best_params(outer_cfg, outer_dir, x_csr.shape[1])

  codes = _encode(outer_params, cfg.model.activation, x_csr)
  # The inner decoder reproduces codes in the activation's range: keep its output
  # activation for bounded activations (tanh, sigmoid), linear otherwise.
  bounded = cfg.model.activation in ("tanh", "sigmoid")
  inner_cfg = _stage_config(cfg, "inner", (h2,), bounded)
  inner_params = _train_inner(inner_cfg, codes, os.path.join(workdir, "stage2_inner"))

  finetune_dir = os.path.join(workdir, "stage3_finetune")
  results = train.train_and_evaluate(_finetune_config(cfg), finetune_dir,
                                     init_params=assemble(outer_params, inner_params))
  results = dict(results)
  results["stages"] = {
      "outer": {k: outer_results[k] for k in ("valid/rmse", "test/rmse", "best_epoch",
                                              "train_seconds")},
      "inner": {"codes": list(codes.shape)},
  }
  if jax.process_index() == 0:
    _publish(finetune_dir, workdir, results)
  return results


def _restore_best_params(stage_cfg, stage_dir: str, num_inputs: int):
  from autorec_jax.training import optim  # pylint: disable=import-outside-toplevel
  manager = checkpoint.make_manager(stage_dir)
  model = model_registry.make_model(stage_cfg.model, num_inputs)
  tx, _ = optim.from_config(stage_cfg.optim, steps_per_epoch=1)
  like = train_step_lib.init_state(model, tx, num_inputs, jax.random.key(0))
  state, _ = checkpoint.restore(manager, checkpoint.best_step(manager), like)
  return jax.device_get(state.params)


def _publish(finetune_dir: str, workdir: str, results: dict) -> None:
  """The run's top-level metrics and results are the fine-tuned model's."""
  for name in ("metrics.jsonl",):
    shutil.copyfile(os.path.join(finetune_dir, name), os.path.join(workdir, name))
  tmp = os.path.join(workdir, "results.json.tmp")
  with open(tmp, "w", encoding="utf-8") as f:
    json.dump(results, f, indent=2, sort_keys=True)
  os.replace(tmp, os.path.join(workdir, "results.json"))
