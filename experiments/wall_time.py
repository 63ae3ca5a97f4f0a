r"""Whole-command wall time of `python -m autorec_jax.main` against its training and
compilation time: what a run spends outside training (start-up, data loading,
checkpoint writes, the final test and ranking passes).

  AUTOREC_DATA_DIR=/work/shared/data python experiments/wall_time.py --runs=3 --sample=100000
  python experiments/wall_time.py --runs=3 -- --config=configs/movielens_1m.py:user

With --sample=N, the data is N ratings drawn uniformly (Python `random.seed(0)`) from
MovieLens-1M's ratings file (under AUTOREC_DATA_DIR), written to a temporary CSV and
read as `data.name=csv`; arguments after `--` are passed to the command (default: the
default config, configs/movielens_1m.py). Each run starts in a new workdir; the
command's own results.json gives its training seconds (the epochs, validation
included) and compilation seconds. Prints one line per run and the median ratio
wall / (training + compilation).
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ML1M = os.path.join("movielens-1m", "ratings_no_timestamps.csv.gz")


def write_sample(path: str, size: int) -> str:
  """N ratings of MovieLens-1M drawn uniformly with seed 0, as a CSV with a header."""
  source = os.path.join(os.environ.get("AUTOREC_DATA_DIR", "data"), ML1M)
  with gzip.open(source, "rt", encoding="utf-8") as f:
    header, *rows = f.read().splitlines()
  random.seed(0)
  with open(path, "w", encoding="utf-8") as f:
    f.write("\n".join([header] + random.sample(rows, size)) + "\n")
  return path


def one_run(args: list[str], workdir: str) -> dict:
  t0 = time.perf_counter()
  proc = subprocess.run([sys.executable, "-m", "autorec_jax.main", f"--workdir={workdir}",
                         *args, "--config.train.progress_bar=False"], cwd=REPO,
                        capture_output=True, text=True, check=False)
  wall = time.perf_counter() - t0
  if proc.returncode != 0:
    raise SystemExit(f"the run failed (exit {proc.returncode}): {proc.stderr.strip()[-500:]}")
  with open(os.path.join(workdir, "results.json"), encoding="utf-8") as f:
    results = json.load(f)
  busy = results["train_seconds"] + results["compile_seconds"]
  return {"wall": wall, "train": results["train_seconds"],
          "compile": results["compile_seconds"], "ratio": wall / busy,
          "epochs": results["epochs_run"], "test_rmse": results["test/rmse"]}


def main():
  parser = argparse.ArgumentParser(description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--runs", type=int, default=3)
  parser.add_argument("--sample", type=int, default=0,
                      help="draw this many MovieLens-1M ratings as the data (0: off)")
  parser.add_argument("command", nargs="*", help="arguments for autorec_jax.main")
  args = parser.parse_args()
  command = args.command or ["--config=configs/movielens_1m.py"]
  with tempfile.TemporaryDirectory() as tmp:
    if args.sample:
      data = write_sample(os.path.join(tmp, "sample.csv"), args.sample)
      command += ["--config.data.name=csv", f"--config.data.path={data}"]
    print("python -m autorec_jax.main " + " ".join(command), flush=True)
    ratios = []
    for i in range(args.runs):
      r = one_run(command, os.path.join(tmp, f"run{i}"))
      ratios.append(r["ratio"])
      print(f"run {i + 1}: wall {r['wall']:.2f} s, training {r['train']:.2f} s "
            f"({r['epochs']} epochs), compilation {r['compile']:.2f} s, "
            f"ratio {r['ratio']:.2f}, test RMSE {r['test_rmse']:.4f}", flush=True)
  print(f"median ratio wall / (training + compilation): {statistics.median(ratios):.2f}")


if __name__ == "__main__":
  main()
