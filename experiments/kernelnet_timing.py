r"""kernelNet's reference code (TensorFlow 1, scipy L-BFGS-B) and autorec_jax timed on
the same data and machine.

  git clone https://github.com/lorenzMuller/kernelNet_MovieLens /tmp/kernelNet_MovieLens
  python3.7 -m venv /tmp/tf1 && /tmp/tf1/bin/pip install tensorflow==1.15.5 'numpy<1.19' scipy
  AUTOREC_DATA_DIR=/work/shared/data python experiments/kernelnet_timing.py \
      --reference_dir=/tmp/kernelNet_MovieLens --tf_python=/tmp/tf1/bin/python --rounds=3

The reference (`kernelNet_ml1m.py`) needs TensorFlow 1.x (`tf.contrib`), whose last
wheels are for Python 3.7, so it runs under the interpreter `--tf_python` names. In
one run, this script:

1. writes MovieLens-1M (from autorec_jax's reader) as `ml-1m/ratings.dat` in a copy of
   `--reference_dir` (the reference reads `user::item::rating[::timestamp]`);
2. runs the reference there, unchanged, pinned to the first `--threads` CPUs, and reads
   the time at which it prints each round (50 L-BFGS-B iterations, then a validation
   pass), stopping it after `--rounds` rounds;
3. runs autorec_jax's `configs/movielens_1m.py:kernelnet` (the same network, penalties
   and schedule) for the same rounds, pinned the same way, and reads each round's
   seconds from metrics.jsonl;
4. prints seconds per round of each (the median of the rounds after the first, which
   include start-up and compilation) and their ratio, and writes --results.

Both do 50 iterations a round with a history of 10; the line searches differ (scipy's
More-Thuente in the reference, optax's zoom here), so the function evaluations per
iteration can differ a little: the table reports seconds per iteration.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from autorec_jax.runtime.resources import cpu_name  # noqa: E402

ITERATIONS = 50  # the reference's output_every: L-BFGS-B iterations per round


def _pin(threads: int):
  cpus = set(range(min(threads, os.cpu_count() or 1)))
  return lambda: os.sched_setaffinity(0, cpus)


def write_ratings(path: str) -> int:
  """MovieLens-1M as `user::item::rating::0` lines; returns the number of ratings."""
  from autorec_jax.config.schema import base_config  # pylint: disable=import-outside-toplevel
  from autorec_jax.data.run_data import load_data  # pylint: disable=import-outside-toplevel
  ratings = load_data(base_config()).loaded.ratings
  os.makedirs(os.path.dirname(path), exist_ok=True)
  with open(path, "w", encoding="ascii") as f:
    for u, i, r in zip(ratings.user_ids[ratings.user], ratings.item_ids[ratings.item],
                       ratings.rating):
      f.write(f"{u}::{i}::{int(r)}::0\n")
  return len(ratings.rating)


def time_reference(args, work: str) -> list[float]:
  """Seconds between the reference's round lines (the first from its start)."""
  env = dict(os.environ, OMP_NUM_THREADS=str(args.threads), CUDA_VISIBLE_DEVICES="")
  proc = subprocess.Popen([args.tf_python, "-u", "kernelNet_ml1m.py"], cwd=work, env=env,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          preexec_fn=_pin(args.threads))
  stamps, start = [], time.perf_counter()
  try:
    for line in proc.stdout:
      if line.startswith("epoch:"):
        stamps.append(time.perf_counter())
        print("reference", line.strip(), f"({stamps[-1] - start:.1f} s)", flush=True)
        if len(stamps) >= args.rounds:
          break
      elif "Error" in line or "Traceback" in line:
        print("reference:", line.rstrip(), flush=True)
  finally:
    proc.kill()
    proc.wait()
  if len(stamps) < args.rounds:
    raise SystemExit(f"the reference stopped after {len(stamps)} rounds (see its output "
                     "above)")
  return [b - a for a, b in zip([start] + stamps[:-1], stamps)]


def time_ours(args, work: str) -> list[float]:
  """Seconds of each of our rounds (perf/epoch_secs, the validation pass excluded)."""
  workdir = os.path.join(work, "autorec_jax_run")
  cmd = [sys.executable, "-m", "autorec_jax.main", "--config=configs/movielens_1m.py:kernelnet",
         f"--workdir={workdir}", f"--config.train.num_epochs={args.rounds}",
         "--config.eval.ranking_ks=()"]
  env = dict(os.environ, XLA_FLAGS=os.environ.get("XLA_FLAGS", ""))
  subprocess.run(cmd, check=True, env=env, preexec_fn=_pin(args.threads),
                 cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
  with open(os.path.join(workdir, "metrics.jsonl"), encoding="utf-8") as f:
    rows = [json.loads(line) for line in f]
  return [r["perf/epoch_secs"] for r in rows if "perf/epoch_secs" in r]


def main():
  parser = argparse.ArgumentParser(description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--reference_dir", required=True,
                      help="a checkout of lorenzMuller/kernelNet_MovieLens")
  parser.add_argument("--tf_python", required=True,
                      help="a Python interpreter with TensorFlow 1.x")
  parser.add_argument("--rounds", type=int, default=3)
  parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
  parser.add_argument("--results", default=os.path.join(
      os.path.dirname(os.path.abspath(__file__)), "results", "kernelnet_timing.md"))
  args = parser.parse_args()
  if args.rounds < 2:
    parser.error("--rounds must be >= 2 (the first round includes start-up)")
  with tempfile.TemporaryDirectory() as tmp:
    work = os.path.join(tmp, "reference")
    shutil.copytree(args.reference_dir, work, ignore=shutil.ignore_patterns(".git"))
    write_ratings(os.path.join(work, "ml-1m", "ratings.dat"))
    ref = time_reference(args, work)
    ours = time_ours(args, tmp)
  ref_round, our_round = statistics.median(ref[1:]), statistics.median(ours[1:])
  cpu = cpu_name()
  lines = [
      f"# kernelNet: the reference TensorFlow code vs autorec_jax ({datetime.date.today()})",
      "",
      f"CPU: {cpu}, {args.threads} threads. Command: `python experiments/kernelnet_timing.py "
      f"--reference_dir=... --tf_python=... --rounds={args.rounds} "
      f"--threads={args.threads}`.",
      "",
      "| program | seconds per round (50 iterations) | seconds per iteration | rounds (s) |",
      "|---|---|---|---|",
      f"| reference (TF 1, scipy L-BFGS-B) | {ref_round:.1f} | {ref_round / ITERATIONS:.2f} | "
      f"{', '.join(f'{s:.1f}' for s in ref)} |",
      f"| autorec_jax (optax L-BFGS) | {our_round:.1f} | {our_round / ITERATIONS:.2f} | "
      f"{', '.join(f'{s:.1f}' for s in ours)} |",
      "",
      f"autorec_jax is {ref_round / our_round:.2f}x faster per iteration (the median of the "
      "rounds after the first; the reference's rounds include its validation pass).",
  ]
  text = "\n".join(lines) + "\n"
  print(text)
  os.makedirs(os.path.dirname(args.results), exist_ok=True)
  with open(args.results, "w", encoding="utf-8") as f:
    f.write(text)


if __name__ == "__main__":
  main()
