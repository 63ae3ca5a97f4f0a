r"""DeepRecommender (NVIDIA, PyTorch) and autorec_jax timed on the same data, same machine.

  git clone https://github.com/NVIDIA/DeepRecommender /tmp/DeepRecommender
  python3.11 -m venv /tmp/torch && /tmp/torch/bin/pip install torch numpy
  python experiments/deeprecommender_timing.py --deeprec_dir=/tmp/DeepRecommender \
      --torch_python=/tmp/torch/bin/python --threads=2,1 --refeed=0,1

autorec_jax's speed targets are ratios to DeepRecommender's CPU epoch
(>= 3x without re-feeding, >= 2x with one re-feeding step, >= 10x for a validation
pass). Those ratios only mean something when both run on the same machine, so this
script, in one run:

1. writes the config's train and validation parts (default
   `configs/movielens_1m.py:deeprec`: ML-1M, users as rows) as DeepRecommender's
   tab-separated `user item rating` files (validation ratings of users or items absent
   from train are dropped: its data layer cannot map them);
2. runs, in a subprocess of `--torch_python` with `torch.set_num_threads(T)`, the loop
   of DeepRecommender's `run.py` (CPU path) with its own `reco_encoder` modules:
   `UserItemRecDataProvider` batches, `AutoEncoder`, `MSEloss`, SGD with momentum 0.9
   on float32 master copies of the parameters, `--aug_step` re-feeding, and its
   one-user-at-a-time `do_eval`. One change: run.py zeroes only the master copies'
   gradients, so the model's gradients pile up across steps and training diverges
   to NaN within the first epoch on ML-1M; the worker also zeroes the model's
   (`model.zero_grad()`, ~1 ms a step), so both programs time finite arithmetic;
3. runs `experiments/benchmark.py` on the same config (its real training loop) and
   prints both, with the ratios. Each program runs in a subprocess pinned to the
   first T CPUs, so that every thread either starts stays on them.

Seconds per epoch are the median of the epochs after the first (both sides); the
validation RMSE printed for each is after the last epoch. PyTorch is not
a dependency of autorec_jax: `--torch_python` names an interpreter that has it
(DeepRecommender's modules need only torch).
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

# The worker (`--worker`) runs under the torch interpreter and needs only the stdlib
# and torch; everything else is imported inside `main`.


def worker(spec: dict) -> dict:
  """DeepRecommender's run.py loop on CPU; returns epoch seconds and eval timings."""
  sys.path.insert(0, spec["deeprec_dir"])
  import torch  # pylint: disable=import-outside-toplevel,import-error
  from reco_encoder.data import input_layer  # pylint: disable=import-outside-toplevel,import-error
  from reco_encoder.model import model  # pylint: disable=import-outside-toplevel,import-error

  torch.set_num_threads(spec["threads"])
  torch.manual_seed(spec["seed"])
  params = {"batch_size": spec["batch_size"], "data_dir": spec["train_dir"],
            "major": "users", "itemIdInd": 1, "userIdInd": 0}
  data_layer = input_layer.UserItemRecDataProvider(params=params)
  eval_layer = input_layer.UserItemRecDataProvider(
      params=dict(params, data_dir=spec["valid_dir"]),
      user_id_map=data_layer.userIdMap, item_id_map=data_layer.itemIdMap)
  eval_layer.src_data = data_layer.data
  net = model.AutoEncoder(layer_sizes=[data_layer.vector_dim] + spec["hidden"],
                          nl_type=spec["activation"], is_constrained=spec["tied"],
                          dp_drop_prob=spec["dropout"],
                          last_layer_activations=spec["output_activation"])
  model_params = [p for p in net.parameters() if p.requires_grad]
  master_params = [p.detach().clone().float() for p in model_params]
  for p in master_params:
    p.requires_grad = True
  optimizer = torch.optim.SGD(master_params, lr=spec["lr"], momentum=0.9)

  def update(inputs, copy_grads):
    optimizer.zero_grad(set_to_none=False)  # run.py's torch zeroed, never dropped, grads
    net.zero_grad()
    outputs = net(inputs)
    loss, num_ratings = model.MSEloss(outputs, inputs)
    loss = loss / num_ratings.half()
    loss.backward()
    if copy_grads:  # run.py copies gradients to the masters on the sparse pass only
      for m, master in zip(model_params, master_params):
        if master.grad is None:
          master.grad = torch.zeros_like(master)
        master.grad.data.copy_(m.grad.data)
    optimizer.step()
    if copy_grads:
      for m, master in zip(model_params, master_params):
        m.data.copy_(master.data)
    return outputs, loss.item()

  epoch_s, train_rmse = [], []
  for _ in range(spec["epochs"]):
    net.train()
    start, total, count = time.perf_counter(), 0.0, 0
    for mb in data_layer.iterate_one_epoch():
      outputs, loss = update(mb.to_dense(), True)
      total, count = total + loss, count + 1
      for _ in range(spec["refeed"]):
        outputs, _ = update(outputs.data, False)
    epoch_s.append(time.perf_counter() - start)
    train_rmse.append((total / max(count, 1)) ** 0.5)
  net.eval()
  start, sse, n = time.perf_counter(), 0.0, 0.0
  with torch.no_grad():
    for target, src in eval_layer.iterate_one_epoch_eval():
      loss, num = model.MSEloss(net(src.to_dense()), target.to_dense())
      sse, n = sse + loss.item(), n + num.item()
  return {"epoch_s": epoch_s, "train_rmse": train_rmse,
          "eval_s": time.perf_counter() - start, "valid_rmse": (sse / max(n, 1.0)) ** 0.5,
          "torch": torch.__version__}


def write_tsv(ratings, path: str, keep=None) -> int:
  """Writes `user<TAB>item<TAB>rating` lines (0-based ids); returns the lines written.
  `keep` (a boolean array over the ratings) selects which are written."""
  import numpy as np  # pylint: disable=import-outside-toplevel
  index = np.arange(ratings.num_ratings) if keep is None else np.flatnonzero(keep)
  os.makedirs(os.path.dirname(path), exist_ok=True)
  with open(path, "w", encoding="utf-8") as f:
    for u, i, r in zip(ratings.user[index], ratings.item[index], ratings.rating[index]):
      f.write(f"{u}\t{i}\t{r:g}\n")
  return len(index)


def export_split(data, out_dir: str) -> dict[str, str]:
  """DeepRecommender's input files for the train and validation parts: {'train_dir',
  'valid_dir'}; validation ratings of users or items unseen in train are dropped."""
  import numpy as np  # pylint: disable=import-outside-toplevel
  train_dir, valid_dir = os.path.join(out_dir, "train"), os.path.join(out_dir, "valid")
  write_tsv(data.train, os.path.join(train_dir, "train.txt"))
  seen = (np.isin(data.valid.user, np.unique(data.train.user))
          & np.isin(data.valid.item, np.unique(data.train.item)))
  write_tsv(data.valid, os.path.join(valid_dir, "valid.txt"), keep=seen)
  return {"train_dir": train_dir, "valid_dir": valid_dir}


def check_deeprec_dir(path: str) -> None:
  """Raises ValueError unless `path` holds DeepRecommender's reco_encoder modules."""
  needed = [os.path.join(path, "reco_encoder", *parts)
            for parts in (("model", "model.py"), ("data", "input_layer.py"))]
  missing = [p for p in needed if not os.path.isfile(p)]
  if missing:
    raise ValueError(f"--deeprec_dir={path} is not a clone of "
                     f"github.com/NVIDIA/DeepRecommender: missing {', '.join(missing)}")


def worker_spec(cfg, dirs: dict, *, deeprec_dir: str, threads: int, refeed: int,
                epochs: int) -> dict:
  """The worker's settings from an autorec_jax config (DeepRecommender's run.py
  supports user rows and SGD with momentum 0.9 as used here)."""
  if cfg.model.orientation != "user":
    raise ValueError("DeepRecommender's run.py trains on user rows: use "
                     "--config.model.orientation=user")
  if cfg.optim.name != "sgd" or cfg.optim.momentum != 0.9:
    raise ValueError("the worker runs run.py's 'momentum' optimizer (SGD, momentum 0.9): "
                     f"config has optim.name={cfg.optim.name!r}, momentum="
                     f"{cfg.optim.momentum}")
  return dict(dirs, deeprec_dir=os.path.abspath(deeprec_dir), threads=threads,
              refeed=refeed, epochs=epochs, seed=cfg.seed,
              batch_size=cfg.train.batch_size, hidden=[int(h) for h in cfg.model.hidden],
              activation=cfg.model.activation, tied=bool(cfg.model.tied),
              dropout=float(cfg.model.dropout),
              output_activation=bool(cfg.model.output_activation),
              lr=float(cfg.optim.learning_rate))


def _pinned(threads: int):
  """A preexec_fn that pins the child to its first `threads` CPUs, so every thread it
  starts (torch's, XLA's) runs on those; None where affinity is unsupported."""
  if not hasattr(os, "sched_setaffinity"):
    return None
  cpus = sorted(os.sched_getaffinity(0))[:threads]
  return lambda: os.sched_setaffinity(0, cpus)


def run_worker(torch_python: str, spec: dict) -> dict:
  """Runs `worker(spec)` in a subprocess of `torch_python`; its last stdout line is JSON."""
  proc = subprocess.run([torch_python, os.path.abspath(__file__), "--worker", json.dumps(spec)],
                        capture_output=True, text=True, check=False,
                        preexec_fn=_pinned(spec["threads"]))
  if proc.returncode != 0:
    raise RuntimeError(f"DeepRecommender worker failed (exit {proc.returncode}) under "
                       f"{torch_python}:\n{proc.stderr[-3000:]}")
  return json.loads(proc.stdout.strip().splitlines()[-1])


def run_ours(config_flags: list[str], *, threads: int, refeed: list[int], epochs: int,
             out_json: str) -> dict[int, dict]:
  """experiments/benchmark.py on `threads` CPUs; {refeed steps: its train result}."""
  here = os.path.dirname(os.path.abspath(__file__))
  cmd = [sys.executable, os.path.join(here, "benchmark.py"), *config_flags,
         f"--refeed={','.join(map(str, refeed))}", f"--epochs={epochs}", "--repeats=3",
         f"--json={out_json}"]
  proc = subprocess.run(cmd, capture_output=True, text=True, check=False,
                        preexec_fn=_pinned(threads), cwd=os.path.dirname(here))
  if proc.returncode != 0:
    raise RuntimeError(f"experiments/benchmark.py failed (exit {proc.returncode}):\n"
                       f"{proc.stderr[-3000:]}")
  with open(out_json, encoding="utf-8") as f:
    return {t["refeed_steps"]: t for t in json.load(f)["train"]}


def median_after_first(values) -> float:
  """Median of the epochs after the first (which warms caches or compiles)."""
  return statistics.median(values[1:] if len(values) > 1 else values)


def report_lines(rows: list[dict]) -> list[str]:
  """A markdown table: one row per (threads, refeed) with both programs and the ratios."""
  lines = ["| threads | re-feeding steps | DeepRecommender s/epoch | autorec_jax s/epoch | "
           "speed-up | DeepRecommender eval s | autorec_jax eval s | eval speed-up | "
           "valid RMSE (theirs / ours) |", "|---" * 9 + "|"]
  for r in rows:
    theirs, ours = median_after_first(r["theirs"]["epoch_s"]), r["ours"]["epoch_s"]
    lines.append(
        f"| {r['threads']} | {r['refeed']} | {theirs:.2f} | {ours:.2f} | "
        f"{theirs / ours:.2f}x | {r['theirs']['eval_s']:.2f} | {r['ours']['eval_s']:.2f} | "
        f"{r['theirs']['eval_s'] / r['ours']['eval_s']:.0f}x | "
        f"{r['theirs']['valid_rmse']:.4f} / {r['ours']['valid_rmse_per_epoch'][-1]:.4f} |")
  return lines


def config_args(argv: list[str]) -> list[str]:
  """The --config flags of a command line (`--config=F`, `--config F`, `--config.x=v`,
  `--config.x v`), to hand them on to experiments/benchmark.py unchanged."""
  out = []
  for i, arg in enumerate(argv):
    if arg == "--config" or (arg.startswith("--config.") and "=" not in arg):
      out += argv[i:i + 2]
    elif arg.startswith("--config=") or arg.startswith("--config."):
      out.append(arg)
  return out


def main(argv) -> None:
  del argv
  from absl import logging  # pylint: disable=import-outside-toplevel
  from autorec_jax.config import checks as config_checks  # pylint: disable=import-outside-toplevel
  from autorec_jax.data import run_data as run_data_lib

  logging.set_verbosity(logging.WARNING)
  cfg = _CONFIG.value
  config_checks.validate(cfg)
  try:
    check_deeprec_dir(_DEEPREC_DIR.value)
    worker_spec(cfg, {}, deeprec_dir=_DEEPREC_DIR.value, threads=1, refeed=0, epochs=1)
  except ValueError as e:
    sys.exit(f"error: {e}")
  data = run_data_lib.load_data(cfg)
  rows = []
  with tempfile.TemporaryDirectory(prefix="deeprec_timing_") as tmp:
    dirs = export_split(data, tmp)
    config_flags = config_args(sys.argv[1:])
    refeeds = [int(r) for r in _REFEED.value]
    for threads in map(int, _THREADS.value):
      try:
        ours_by_refeed = run_ours(config_flags, threads=threads, refeed=refeeds,
                                  epochs=_EPOCHS.value,
                                  out_json=os.path.join(tmp, f"ours_{threads}.json"))
      except RuntimeError as e:
        sys.exit(f"error: {e}")
      for refeed in refeeds:
        spec = worker_spec(cfg, dirs, deeprec_dir=_DEEPREC_DIR.value, threads=threads,
                           refeed=refeed, epochs=_EPOCHS.value)
        try:
          theirs = run_worker(_TORCH_PYTHON.value, spec)
        except RuntimeError as e:
          sys.exit(f"error: {e}")
        ours = ours_by_refeed[refeed]
        rows.append({"threads": threads, "refeed": refeed, "theirs": theirs, "ours": ours})
        print(f"threads={threads} refeed={refeed}: DeepRecommender (torch "
              f"{theirs['torch']}) {median_after_first(theirs['epoch_s']):.2f} s/epoch, "
              f"autorec_jax {ours['epoch_s']:.2f} s/epoch", flush=True)
  print("\n".join(report_lines(rows)))
  if _JSON.value:
    with open(_JSON.value, "w", encoding="utf-8") as f:
      json.dump(rows, f, indent=2)


if __name__ == "__main__" and len(sys.argv) == 3 and sys.argv[1] == "--worker":
  print(json.dumps(worker(json.loads(sys.argv[2]))))
elif __name__ == "__main__":
  sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
  from absl import app, flags  # pylint: disable=ungrouped-imports
  # benchmark defines --config (default configs/movielens_1m.py:deeprec, with
  # --config.x.y overrides), --epochs, --refeed and --json; this script reuses them.
  from experiments import benchmark  # pylint: disable=wrong-import-position

  _CONFIG, _EPOCHS, _REFEED, _JSON = (benchmark._CONFIG, benchmark._EPOCHS,  # pylint: disable=protected-access
                                      benchmark._REFEED, benchmark._JSON)  # pylint: disable=protected-access
  _DEEPREC_DIR = flags.DEFINE_string(
      "deeprec_dir", None, "A clone of github.com/NVIDIA/DeepRecommender.", required=True)
  _TORCH_PYTHON = flags.DEFINE_string(
      "torch_python", sys.executable, "A Python interpreter with torch installed.")
  _THREADS = flags.DEFINE_list("threads", ["2"], "CPU thread counts to compare at.")
  app.run(main)
