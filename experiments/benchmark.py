r"""Training and evaluation speed of one config on this machine, against its own peak.

  python experiments/benchmark.py                    # DeepRec's ML-1M benchmark model
  python experiments/benchmark.py --refeed=0,1 --epochs=4 --json=/tmp/bench.json
  python experiments/benchmark.py --config=configs/netflix_full.py --config.data.path=...
  python experiments/benchmark.py --config.model.compute_dtype=bfloat16

Prints, in one run (so every ratio compares numbers taken under the same load):

* peak: the device's measured matmul FLOP/s (fp32, and bf16 x bf16 -> fp32), the
  best of a 2048^3 product and the model's own layer shapes;
* batcher: the host CSR batcher alone (densify + pad, no device), batches/s, and its
  ratio to the training step rate (the pipeline never stalls when it is >> 1);
* train: seconds per epoch (median of the epochs after the first, which compiles),
  train ratings/s and rows/s, for every `--refeed` count, measured by the real
  training loop (`train.train_and_evaluate`, prefetching, checkpoints and all);
* eval: one full validation pass (RMSE/MAE) in seconds and rows/s; ranking metrics
  are timed apart;
* FLOPs per epoch, dense and sparsity-aware (below), and the utilisation: FLOPs /
  (epoch seconds x peak);
* sparse kernels: the first layer's forward + weight gradient on a real batch as a
  dense matmul and from the observed entries only (XLA's gather + segment_sum and
  BCOO, and the native kernels of autorec_jax/native/sparse_input.py), and the output
  layer's forward + gradients for a loss at the entries, dense or by the native
  kernels: the evidence for which input path is fast on this device
  (`--config.model.input_path=sparse` times training with the native kernels).

FLOP counts (multiply-add = 2 FLOPs; R rows per epoch, N observed train entries, n the
input width, w1 the first hidden width, M the sum of 2*in*out over the layers between
the first and the last):
  dense          R * (3 * F - 2*n*w1) per pass, F = sum of 2*in*out over all layers
                 (forward, weight gradient, input gradient except the first layer's);
  sparsity-aware the first layer and its weight gradient on observed entries only
                 (2 * 2*N*w1), the middle layers dense (3 * R * M), the output layer
                 only where a loss is (3 * 2*N*w1): 10*N*w1 + 3*R*M. With re-feeding
                 the first pass needs the dense output (+ 2*R*w1*n - 2*N*w1) and every
                 re-feeding pass is dense.
These are the benchmark's definitions (ML-1M, 3706-512-512-1024-512-512-3706, batch 128:
171 GFLOP dense and 61 sparsity-aware per epoch without re-feeding).

The default config is `configs/movielens_1m.py:deeprec`, DeepRecommender's benchmark
model on ML-1M; any `--config` and `--config.x.y=value` overrides work as in
`autorec_jax.main`. Runs write to a temporary workdir that is deleted afterwards.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import tempfile
import time

if __package__ in (None, ""):  # run as `python experiments/benchmark.py`
  sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from absl import app, flags, logging  # pylint: disable=wrong-import-position
from ml_collections import config_flags  # pylint: disable=wrong-import-position

_CONFIG = config_flags.DEFINE_config_file(
    "config", "configs/movielens_1m.py:deeprec", "Config file (and :variant) to time.")
_EPOCHS = flags.DEFINE_integer("epochs", 4, "Epochs per training run (the first compiles "
                               "and is not counted).", lower_bound=2)
_REFEED = flags.DEFINE_list("refeed", ["0", "1"], "Re-feeding step counts to time.")
_REPEATS = flags.DEFINE_integer("repeats", 20, "Timed calls per kernel measurement.")
_JSON = flags.DEFINE_string("json", None, "Also write every number to this JSON file.")
_STEPS_ONLY = flags.DEFINE_bool("steps_only", False, "Time single train steps only, no "
                                "whole epochs (for data sets whose epoch takes minutes).")


# --- pure helpers (unit-tested) -------------------------------------------------------


def layer_shapes(num_inputs: int, hidden) -> list[tuple[int, int]]:
  """(in, out) of every dense layer of the mirrored autoencoder."""
  widths = [num_inputs, *hidden]
  enc = list(zip(widths[:-1], widths[1:]))
  return enc + [(o, i) for i, o in reversed(enc)]


def epoch_flops(num_inputs: int, hidden, *, rows: int, entries: int,
                refeed_steps: int) -> dict[str, float]:
  """Dense and sparsity-aware training FLOPs of one epoch (see the module docstring)."""
  shapes = layer_shapes(num_inputs, hidden)
  per_layer = [2 * i * o for i, o in shapes]
  total, first, last = sum(per_layer), per_layer[0], per_layer[-1]
  middle = total - first - last
  w1 = shapes[0][1]
  dense_pass = rows * (3 * total - first)
  dense = dense_pass * (1 + refeed_steps)
  sparse = 10 * entries * w1 + 3 * rows * middle
  if refeed_steps:
    sparse += rows * last - 2 * entries * w1  # the dense output to re-feed
    sparse += dense_pass * refeed_steps
  return {"dense": float(dense), "sparse_aware": float(sparse)}


def eval_flops(num_inputs: int, hidden, *, rows: int) -> float:
  """Forward FLOPs of a dense evaluation pass over `rows` rows."""
  return float(rows * sum(2 * i * o for i, o in layer_shapes(num_inputs, hidden)))


def time_call(fn, *args, repeats: int) -> float:
  """Median seconds of `fn(*args)` after one warm-up call (blocks on the result)."""
  import jax  # pylint: disable=import-outside-toplevel
  jax.block_until_ready(fn(*args))
  times = []
  for _ in range(repeats):
    t0 = time.perf_counter()
    jax.block_until_ready(fn(*args))
    times.append(time.perf_counter() - t0)
  return statistics.median(times)


# --- measurements ---------------------------------------------------------------------


def matmul_peak(shapes: list[tuple[int, int, int]], repeats: int) -> dict[str, dict]:
  """FLOP/s of (m x k) @ (k x n) per dtype; 'best' is the peak used for utilisation."""
  import jax  # pylint: disable=import-outside-toplevel
  import jax.numpy as jnp  # pylint: disable=import-outside-toplevel
  out = {}
  for name, dtype in (("float32", jnp.float32), ("bfloat16", jnp.bfloat16)):
    dot = jax.jit(lambda a, b: jnp.dot(a, b, preferred_element_type=jnp.float32))
    per_shape = {}
    for m, k, n in shapes:
      a = jnp.ones((m, k), dtype)
      b = jnp.ones((k, n), dtype)
      per_shape[f"{m}x{k}x{n}"] = 2 * m * k * n / time_call(dot, a, b, repeats=repeats)
    out[name] = {"per_shape": per_shape, "best": max(per_shape.values())}
  return out


def batcher_rate(batcher, epoch: int = 1) -> dict[str, float]:
  """One epoch of host batches (prefetch off: the densifying work alone)."""
  from autorec_jax.data.batching import CSRBatcher  # pylint: disable=import-outside-toplevel
  sync = CSRBatcher(batcher.matrix, batcher.batch_size, seed=batcher.seed,
                    prefetch=0)
  t0 = time.perf_counter()
  n = sum(1 for _ in sync.train_batches(epoch))
  seconds = time.perf_counter() - t0
  return {"batches": n, "seconds": seconds, "batches_per_s": n / seconds}


def sparse_kernels(batch: dict, width: int, repeats: int) -> dict[str, float]:
  """First-layer forward + weight gradient on one real batch, dense vs entries only."""
  import jax  # pylint: disable=import-outside-toplevel
  import jax.numpy as jnp  # pylint: disable=import-outside-toplevel
  import numpy as np  # pylint: disable=import-outside-toplevel
  from jax.experimental import sparse  # pylint: disable=import-outside-toplevel

  x = jnp.asarray(batch["x"])
  rows_B, cols = np.nonzero(batch["mask"])
  num_rows, num_inputs = x.shape
  kernel = jax.random.normal(jax.random.key(0), (num_inputs, width), jnp.float32) * 0.01
  cot = jax.random.normal(jax.random.key(1), (num_rows, width), jnp.float32)

  def dense(k, x):
    return jnp.vdot(x @ k, cot)

  r, c = jnp.asarray(rows_B, jnp.int32), jnp.asarray(cols, jnp.int32)
  v = jnp.asarray(batch["x"][rows_B, cols])

  def gathered(k, r, c, v):
    h = jax.ops.segment_sum(v[:, None] * k[c], r, num_rows, indices_are_sorted=True)
    return jnp.vdot(h, cot)

  mat = sparse.BCOO((v, jnp.stack([r, c], axis=1)), shape=(num_rows, num_inputs))

  def bcoo(k, mat):
    return jnp.vdot(mat @ k, cot)

  grad = lambda f: jax.jit(jax.value_and_grad(f))  # pylint: disable=unnecessary-lambda-assignment
  out = {
      "entries": int(len(rows_B)),
      "dense_s": time_call(grad(dense), kernel, x, repeats=repeats),
      "gather_segment_sum_s": time_call(grad(gathered), kernel, r, c, v, repeats=repeats),
      "bcoo_s": time_call(grad(bcoo), kernel, mat, repeats=repeats),
      "native_s": None,
  }
  from autorec_jax.models import sparse as sparse_ops  # pylint: disable=import-outside-toplevel
  from autorec_jax.training import fast_path  # pylint: disable=import-outside-toplevel
  if fast_path.sparse_ops_available()[0]:
    rows = sparse_ops.SparseRows(r, c, v, jnp.asarray([len(rows_B)], jnp.int32),
                                 shape=(num_rows, num_inputs))

    def native(k, rows):
      return jnp.vdot(sparse_ops.input_matmul(rows, k), cot)

    out["native_s"] = time_call(grad(native), kernel, rows, repeats=repeats)
    out.update(output_layer_kernels(num_rows, num_inputs, width,
                                    (r, c, rows.count), repeats))
  return out


def output_layer_kernels(num_rows: int, num_inputs: int, width: int, entries,
                         repeats: int) -> dict[str, float]:
  """The output layer's forward + gradients (h, kernel, bias) for a loss at the
  batch's entries: the dense product then a gather, against the native kernels that
  compute it at the entries only."""
  import jax  # pylint: disable=import-outside-toplevel
  import jax.numpy as jnp  # pylint: disable=import-outside-toplevel
  from autorec_jax.models import sparse as sparse_ops  # pylint: disable=import-outside-toplevel

  row, col, _ = entries
  h = jax.random.normal(jax.random.key(2), (num_rows, width), jnp.float32)
  # items-major [n, w], as the model stores its output kernel
  kernel = jax.random.normal(jax.random.key(3), (num_inputs, width), jnp.float32) * 0.01
  bias = jnp.zeros((num_inputs,), jnp.float32)
  cot = jax.random.normal(jax.random.key(4), row.shape, jnp.float32)

  def dense(h, k, b):
    return jnp.vdot((h @ k.T + b[None, :])[row, col], cot)

  def native(h, k, b):
    return jnp.vdot(sparse_ops.output_matmul(h, k, b, *entries), cot)

  grad = lambda f: jax.jit(jax.value_and_grad(f, argnums=(0, 1, 2)))  # pylint: disable=unnecessary-lambda-assignment
  return {"output_dense_s": time_call(grad(dense), h, kernel, bias, repeats=repeats),
          "output_native_s": time_call(grad(native), h, kernel, bias, repeats=repeats)}


def step_times(cfg, train_csr, num_inputs: int, repeats: int) -> dict[str, float]:
  """Seconds per jitted train step on one real batch, per input path and re-feeding
  count (the step alone: no host pipeline, same batch every time)."""
  import jax  # pylint: disable=import-outside-toplevel
  from autorec_jax.training import optim  # pylint: disable=import-outside-toplevel
  from autorec_jax.training import fast_path
  from autorec_jax.models import registry as model_registry
  from autorec_jax.training import step as train_step_lib
  from autorec_jax.data.batching import CSRBatcher  # pylint: disable=import-outside-toplevel

  paths = ["dense"] + (["sparse"] if fast_path.sparse_ops_available()[0] else [])
  batcher = CSRBatcher(train_csr, cfg.train.batch_size, seed=cfg.seed, prefetch=0,
                       entries="sparse" in paths)
  batch = {k: jax.numpy.asarray(v) for k, v in next(iter(batcher.train_batches(1))).items()}
  model = model_registry.make_model(cfg.model, num_inputs)
  out = {}
  for refeed in (0, 1):
    tx, _ = optim.from_config(cfg.optim, batcher.num_train_batches)
    for path in paths:
      step = jax.jit(train_step_lib.make_train_step(model, tx, refeed_steps=refeed,
                                           sparse_input=path == "sparse",
                                           num_inputs=num_inputs))
      state = train_step_lib.init_state(model, tx, num_inputs, jax.random.key(0))
      key = jax.random.key(1)
      out[f"{path}_refeed{refeed}_s"] = time_call(
          lambda s: step(s, batch, key)[1], state, repeats=repeats)
  return out


def train_run(cfg, refeed_steps: int, epochs: int) -> dict:
  """Trains `epochs` epochs in a temporary workdir and reads back its timings."""
  from autorec_jax.training import loop as train  # pylint: disable=import-outside-toplevel
  cfg = cfg.copy_and_resolve_references()
  with cfg.unlocked():
    cfg.train.refeed_steps = refeed_steps
    cfg.train.num_epochs = epochs
    cfg.train.eval_every_epochs = 1
    cfg.train.patience = 0  # every epoch is timed: no early stop
    cfg.eval.ranking_every_epochs = 1  # the ranking pass is one of the reported costs
    cfg.train.progress_bar = False
  with tempfile.TemporaryDirectory(prefix="autorec_bench_") as workdir:
    results = train.train_and_evaluate(cfg, workdir)
    with open(os.path.join(workdir, "metrics.jsonl"), encoding="utf-8") as f:
      rows = [json.loads(line) for line in f]
  epochs_rows = [r for r in rows if "perf/epoch_secs" in r]
  timed = epochs_rows[1:]
  return {
      "epoch_s": statistics.median(r["perf/epoch_secs"] for r in timed),
      "first_epoch_s": epochs_rows[0]["perf/epoch_secs"],
      "eval_s": statistics.median(r["perf/eval_secs"] for r in timed),
      "ranking_s": statistics.median(r["perf/ranking_secs"] for r in timed),
      "valid_rmse": results["valid/rmse"],
      "valid_rmse_per_epoch": [r.get("valid/rmse") for r in epochs_rows],
  }


# --- the report -----------------------------------------------------------------------


def _fmt(x: float, digits: int = 3) -> str:
  return f"{x:.{digits}f}" if abs(x) < 1e5 else f"{x:.3g}"


def report_lines(r: dict) -> list[str]:
  """Human-readable lines of a benchmark result dict."""
  lines = [f"device: {r['device']}  ({r['devices']} device(s), compute dtype "
           f"{r['compute_dtype']}, input path {r['input_path']}, malloc tuning "
           f"{'on' if r.get('malloc_tuned') else 'off'})",
           f"data: {r['rows']} train rows, {r['entries']} train ratings, width "
           f"{r['num_inputs']}, hidden {r['hidden']}, batch {r['batch_size']} "
           f"({r['steps_per_epoch']} steps/epoch)"]
  for dtype, p in r["peak"].items():
    shapes = ", ".join(f"{k} {v / 1e9:.0f}" for k, v in p["per_shape"].items())
    lines.append(f"peak matmul {dtype}: {p['best'] / 1e9:.0f} GFLOP/s ({shapes})")
  peak = r["peak"][r["peak_dtype"]]["best"]
  b = r["batcher"]
  lines.append(f"batcher alone: {b['batches_per_s']:.0f} batches/s "
               f"({b['seconds']:.2f} s/epoch)")
  for t in r["train"]:
    steps_per_s = r["steps_per_epoch"] / t["epoch_s"]
    lines.append(
        f"train refeed={t['refeed_steps']}: {t['epoch_s']:.3f} s/epoch, "
        f"{r['entries'] / t['epoch_s']:.3g} ratings/s, {steps_per_s:.1f} steps/s "
        f"(batcher/step rate {b['batches_per_s'] / steps_per_s:.1f}x); "
        f"{t['flops']['dense'] / 1e9:.0f} GFLOP dense, "
        f"{t['flops']['sparse_aware'] / 1e9:.0f} sparsity-aware; utilisation "
        f"{t['flops']['dense'] / t['epoch_s'] / peak:.0%} (dense), "
        f"{t['flops']['sparse_aware'] / t['epoch_s'] / peak:.0%} (sparsity-aware); "
        f"valid RMSE after {len(t['valid_rmse_per_epoch'])} epochs "
        f"{t['valid_rmse_per_epoch'][-1]:.4f}")
  if r["train"]:
    e = r["train"][0]
    lines.append(f"eval: {e['eval_s']:.3f} s per validation pass ({r['valid_rows']} rows, "
                 f"{r['valid_rows'] / e['eval_s']:.0f} rows/s, "
                 f"{r['eval_flops'] / e['eval_s'] / 1e9:.0f} GFLOP/s); "
                 f"ranking metrics {e['ranking_s']:.3f} s")
  k = r["sparse_kernels"]
  if "step" in r:
    lines.append("one train step on one batch: " + ", ".join(
        f"{name[:-2].replace('_', ' ')} {sec * 1e3:.1f} ms" for name, sec in r["step"].items()))
  native = ("unavailable" if k["native_s"] is None else f"{k['native_s'] * 1e3:.2f} ms")
  lines.append(f"first layer fwd+wgrad on one batch ({k['entries']} entries): dense "
               f"{k['dense_s'] * 1e3:.2f} ms, gather+segment_sum "
               f"{k['gather_segment_sum_s'] * 1e3:.2f} ms, BCOO {k['bcoo_s'] * 1e3:.2f} ms, "
               f"native sparse kernels {native}")
  if "output_native_s" in k:
    lines.append(f"output layer fwd+grads for a loss at the entries: dense "
                 f"{k['output_dense_s'] * 1e3:.2f} ms, native sparse kernels "
                 f"{k['output_native_s'] * 1e3:.2f} ms")
  return lines


def main(argv) -> None:
  del argv
  from autorec_jax.training import fast_path  # pylint: disable=import-outside-toplevel
  malloc_tuned = fast_path.tune_malloc()  # as autorec_jax.main does
  import jax  # pylint: disable=import-outside-toplevel
  from autorec_jax.config import checks as config_checks  # pylint: disable=import-outside-toplevel
  from autorec_jax.training import loop as train
  from autorec_jax.data import run_data as run_data_lib
  from autorec_jax.models import registry as model_registry
  from autorec_jax.data.batching import CSRBatcher  # pylint: disable=import-outside-toplevel

  logging.set_verbosity(logging.WARNING)
  cfg = _CONFIG.value
  config_checks.validate(cfg)
  data = run_data_lib.load_data(cfg)
  orientation = cfg.model.orientation
  _, train_csr = train.model_inputs(cfg, data)
  batcher = CSRBatcher(train_csr, cfg.train.batch_size, seed=cfg.seed, prefetch=0)
  hidden = model_registry.hidden_widths(cfg.model, batcher.num_cols)
  rows, entries = len(batcher.train_rows), int(train_csr.nnz)
  valid_rows = int((data.valid.to_csr(orientation).getnnz(axis=1) > 0).sum())

  result = {
      "device": jax.devices()[0].device_kind, "devices": jax.device_count(),
      "compute_dtype": cfg.model.compute_dtype,
      "input_path": train.choose_input_path(cfg, train_csr), "num_inputs": batcher.num_cols,
      "hidden": list(hidden), "batch_size": cfg.train.batch_size, "rows": rows,
      "entries": entries, "steps_per_epoch": batcher.num_train_batches,
      "valid_rows": valid_rows, "malloc_tuned": malloc_tuned,
  }
  b = cfg.train.batch_size
  widest = max(hidden)
  shapes = [(2048, 2048, 2048), (b, batcher.num_cols, hidden[0]),
            (b, hidden[0], batcher.num_cols), (b, widest, widest)]
  result["peak"] = matmul_peak(shapes, _REPEATS.value)
  result["peak_dtype"] = cfg.model.compute_dtype
  result["batcher"] = batcher_rate(batcher)
  result["sparse_kernels"] = sparse_kernels(next(iter(batcher.train_batches(1))),
                                            hidden[0], _REPEATS.value)
  result["eval_flops"] = eval_flops(batcher.num_cols, hidden, rows=valid_rows)
  if jax.device_count() == 1:
    result["step"] = step_times(cfg, train_csr, batcher.num_cols, _REPEATS.value)
  result["train"] = []
  for refeed in ([] if _STEPS_ONLY.value else map(int, _REFEED.value)):
    t = train_run(cfg, refeed, _EPOCHS.value)
    t["refeed_steps"] = refeed
    # Padding rows of the last batch are computed too.
    t["flops"] = epoch_flops(batcher.num_cols, hidden,
                             rows=batcher.num_train_batches * b, entries=entries,
                             refeed_steps=refeed)
    result["train"].append(t)
  print("\n".join(report_lines(result)))
  if _JSON.value:
    with open(_JSON.value, "w", encoding="utf-8") as f:
      json.dump(result, f, indent=2)


if __name__ == "__main__":
  app.run(main)
