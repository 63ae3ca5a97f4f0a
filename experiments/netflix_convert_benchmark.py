"""Times the Netflix converter on synthetic training sets and extrapolates to the real one.

For each size it writes (or reuses) a synthetic tree with experiments/netflix_synthetic.py
(17,770 movies, ~480K customers), runs `python -m autorec_jax.data.netflix` on it in a
subprocess, and reports wall time, CPU time, ratings/s and peak memory: ru_maxrss of
the converter (os.wait4 gives that one child's rusage, i.e. RUSAGE_CHILDREN for it
alone) and, sampled every 0.1 s, the summed RSS of the converter and its workers.

Extrapolation to the real 100,480,507 ratings: with two sizes, time and memory are
fitted as a + b * ratings (the fixed part: interpreter, imports, 17,770 files, id
tables; the per-rating part: parsed columns, split masks and the largest output
column); with one size, time is scaled linearly and memory by the per-rating bytes.
The movie and customer counts do not grow with size, so id tables sit in the fixed
part, as they would for the real data.

  python experiments/netflix_convert_benchmark.py --dir=/tmp/nfbench \
      --ratings=10000000,20000000 [--format=dir|tar|combined] [--workers=1]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time

REAL_RATINGS = 100_480_507
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def tree(root: str, ratings: int, fmt: str, seed: int) -> tuple[str, int]:
  """A synthetic tree under root (reused when its marker says it was completed).

  Generated in a subprocess: a forked child's ru_maxrss starts at its parent's RSS,
  so the converter must be started from a small benchmark process.
  """
  folder = os.path.join(root, f"synthetic_{ratings}_{fmt}_{seed}")
  marker = os.path.join(folder, "done.json")
  if os.path.exists(marker):
    with open(marker) as f:
      info = json.load(f)
    return info["path"], info["ratings"]
  shutil.rmtree(folder, ignore_errors=True)
  start = time.perf_counter()
  out = subprocess.run(
      [sys.executable, os.path.join(REPO, "experiments", "netflix_synthetic.py"),
       f"--output={folder}", f"--ratings={ratings}", f"--format={fmt}", f"--seed={seed}"],
      check=True, capture_output=True, text=True).stdout
  match = re.search(r"wrote ([\d,]+) ratings of [\d,]+ movies to (.+)", out)
  n, path = int(match[1].replace(",", "")), match[2].strip()
  print(f"  generated {n:,} ratings ({fmt}) in {time.perf_counter() - start:.1f}s",
        flush=True)
  with open(marker, "w") as f:
    json.dump({"path": path, "ratings": n}, f)
  return path, n


def _tree_rss_kib(pid: int) -> int:
  """Summed VmRSS of `pid` and its descendants, from /proc."""
  total, todo = 0, [pid]
  while todo:
    p = todo.pop()
    try:
      with open(f"/proc/{p}/status") as f:
        for line in f:
          if line.startswith("VmRSS:"):
            total += int(line.split()[1])
      for task in os.listdir(f"/proc/{p}/task"):
        with open(f"/proc/{p}/task/{task}/children") as f:
          todo.extend(int(c) for c in f.read().split())
    except (OSError, ValueError):
      pass
  return total


def measure_subprocess(cmd: list[str], env: dict | None = None) -> dict:
  """Runs `cmd` from the repo root; its exit code, stdout, wall and CPU seconds, its
  ru_maxrss and the summed RSS of it and its children sampled every 0.1 s."""
  start = time.perf_counter()
  proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, env=env)
  peak = [0]
  done = threading.Event()

  def sample():
    while not done.wait(0.1):
      peak[0] = max(peak[0], _tree_rss_kib(proc.pid))

  sampler = threading.Thread(target=sample, daemon=True)
  sampler.start()
  chunks = []
  reader = threading.Thread(target=lambda: chunks.append(proc.stdout.read()), daemon=True)
  reader.start()
  _, status, usage = os.wait4(proc.pid, 0)
  wall = time.perf_counter() - start
  done.set()
  sampler.join()
  reader.join()
  proc.stdout.close()
  return {"returncode": os.waitstatus_to_exitcode(status), "stdout": b"".join(chunks).decode(),
          "wall_s": wall, "cpu_s": usage.ru_utime + usage.ru_stime,
          "maxrss_mib": usage.ru_maxrss / 1024, "sampled_rss_mib": peak[0] / 1024}


def run_converter(input_path: str, workers: int) -> dict:
  """Runs the converter once in a subprocess; its time and memory."""
  out = tempfile.mkdtemp(prefix="netflix_bench_out_")
  shutil.rmtree(out)
  cmd = [sys.executable, "-m", "autorec_jax.data.netflix", f"--input={input_path}",
         f"--output={out}", f"--workers={workers}", "--quiet"]
  r = measure_subprocess(cmd)
  shutil.rmtree(out, ignore_errors=True)
  if r["returncode"] != 0:
    raise RuntimeError(f"converter failed ({r['returncode']}): {' '.join(cmd)}")
  r["stats"] = json.loads(r.pop("stdout"))
  return r


def _fit(xs, ys):
  """(a, b) of y = a + b x through two points, or (0, y / x) for one."""
  if len(xs) == 1:
    return 0.0, ys[0] / xs[0]
  (x0, x1), (y0, y1) = xs[-2:], ys[-2:]
  b = (y1 - y0) / (x1 - x0)
  return y0 - b * x0, b


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--dir", default=os.path.join(tempfile.gettempdir(), "netflix_bench"),
                      help="where synthetic trees are written and reused")
  parser.add_argument("--ratings", default="10000000,20000000",
                      help="comma-separated sizes (10M+ recommended; two give slopes)")
  parser.add_argument("--format", default="dir", choices=("dir", "tar", "combined"),
                      help="synthetic input layout")
  parser.add_argument("--workers", type=int, default=1, help="converter --workers")
  parser.add_argument("--seed", type=int, default=0, help="synthetic data seed")
  args = parser.parse_args(argv)
  os.makedirs(args.dir, exist_ok=True)
  print(f"load average before: {os.getloadavg()}; cpus: {os.cpu_count()}")
  rows = []
  for size in sorted(int(s) for s in args.ratings.split(",")):
    path, n = tree(args.dir, size, args.format, args.seed)
    r = run_converter(path, args.workers)
    r["ratings"] = n
    rows.append(r)
    print(f"{n:>12,} ratings: wall {r['wall_s']:6.1f}s, cpu {r['cpu_s']:6.1f}s, "
          f"{n / r['wall_s'] / 1e6:5.2f}M ratings/s (wall), "
          f"{n / r['cpu_s'] / 1e6:5.2f}M/s (cpu), ru_maxrss {r['maxrss_mib']:7.0f} MiB, "
          f"sampled tree RSS {r['sampled_rss_mib']:7.0f} MiB", flush=True)
  xs = [r["ratings"] for r in rows]
  print(f"load average after: {os.getloadavg()}")
  print(f"extrapolated to {REAL_RATINGS:,} ratings:")
  for key, unit, label in (("wall_s", "s", "wall time"), ("cpu_s", "s", "cpu time"),
                           ("maxrss_mib", "MiB", "peak RSS (ru_maxrss)")):
    a, b = _fit(xs, [r[key] for r in rows])
    per = (f"{b * 1e6:.2f} {unit} per 1M ratings" if unit == "s" else
           f"{b * 2**20:.1f} bytes per rating")
    print(f"  {label:22s} {a + b * REAL_RATINGS:8.1f} {unit}  (fixed {a:.1f} {unit} + "
          f"{per})")
  lin = rows[-1]["wall_s"] * REAL_RATINGS / rows[-1]["ratings"]
  print(f"  wall time, linear from the largest size alone: {lin:.1f} s")


if __name__ == "__main__":
  sys.exit(main())
