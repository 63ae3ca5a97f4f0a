r"""Peak host memory of training on a Netflix-full-shaped synthetic set.

Writes (or reuses) a synthetic Netflix training set with the real one's shape (17,770
movies, ~480K customers, default 98M ratings: experiments/netflix_synthetic.py),
converts its `full` split with `python -m autorec_jax.data.netflix`, then trains
`configs/netflix_full.py` (n-512-512-1024-dp(0.8)-512-512-n, batch 128) for one epoch
with `python -m autorec_jax.main` and reports the trainer's peak RSS (ru_maxrss, and
the RSS of it and its children sampled every 0.1 s), its epoch time and wall time.

A dense copy of the full matrix would alone need 17,768 x 477K x 4 bytes = 34 GB, so
a peak well under 24 GiB shows that nothing densifies it.

  python experiments/netflix_memory.py --dir=/tmp/nfmem            # 98M ratings
  python experiments/netflix_memory.py --dir=/tmp/nfmem --ratings=2000000 \
      --config.model.hidden='(64,)'                                 # a quick check

Extra `--config.*` arguments go to `autorec_jax.main` unchanged (the defaults here:
1 epoch, no re-feeding step, ranking metrics off, since they only add compute).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile

if __package__ in (None, ""):  # run as `python experiments/netflix_memory.py`
  sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from experiments import netflix_convert_benchmark as ncb  # pylint: disable=wrong-import-position

NETFLIX_FULL_RATINGS = 98_000_000  # about the full time split's train ratings (DeepRec: 98M)
DEFAULT_OVERRIDES = ("--config.train.num_epochs=1", "--config.train.refeed_steps=0",
                     "--config.eval.ranking_ks=()", "--config.train.progress_bar=False")


def converted(root: str, ratings: int, seed: int) -> str:
  """DIR of the converted full split of a synthetic tree (made once, then reused)."""
  tree, _ = ncb.tree(root, ratings, "dir", seed)
  out = os.path.join(root, f"converted_{ratings}_{seed}")
  if not os.path.exists(os.path.join(out, "stats.json")):
    subprocess.run([sys.executable, "-m", "autorec_jax.data.netflix", f"--input={tree}",
                    f"--output={out}", "--splits=full", "--quiet"], cwd=ncb.REPO,
                   check=True, stdout=subprocess.DEVNULL)
  return out


def train_command(data_dir: str, workdir: str, extra: list[str]) -> list[str]:
  return [sys.executable, "-m", "autorec_jax.main", "--config=configs/netflix_full.py",
          f"--workdir={workdir}", f"--config.data.path={data_dir}", "--overwrite",
          *DEFAULT_OVERRIDES, *extra]


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--dir", default=os.path.join(tempfile.gettempdir(), "netflix_memory"),
                      help="where the synthetic tree and its conversion are kept")
  parser.add_argument("--ratings", type=int, default=NETFLIX_FULL_RATINGS)
  parser.add_argument("--seed", type=int, default=0)
  args, extra = parser.parse_known_args(argv)
  unknown = [a for a in extra if not a.startswith("--config.")]
  if unknown:
    parser.error(f"unrecognized arguments: {' '.join(unknown)}")
  os.makedirs(args.dir, exist_ok=True)
  data_dir = converted(args.dir, args.ratings, args.seed)
  with open(os.path.join(data_dir, "stats.json"), encoding="utf-8") as f:
    stats = json.load(f)
  workdir = os.path.join(args.dir, "run")
  r = ncb.measure_subprocess(train_command(data_dir, workdir, extra))
  if r["returncode"] != 0:
    print(f"training failed (exit {r['returncode']}); see the log above", file=sys.stderr)
    return 1
  with open(os.path.join(workdir, "metrics.jsonl"), encoding="utf-8") as f:
    rows = [json.loads(line) for line in f]
  epoch_s = [row["perf/epoch_secs"] for row in rows if "perf/epoch_secs" in row]
  print(json.dumps({"split_stats": stats.get("full", stats)}, indent=None)[:2000])
  print(f"trained {len(epoch_s)} epoch(s): {epoch_s[-1]:.1f} s per epoch, wall "
        f"{r['wall_s']:.0f} s (loading, compiling and evaluation included), CPU "
        f"{r['cpu_s']:.0f} s")
  print(f"peak RSS: ru_maxrss {r['maxrss_mib'] / 1024:.2f} GiB, sampled (with children) "
        f"{r['sampled_rss_mib'] / 1024:.2f} GiB")
  return 0


if __name__ == "__main__":
  sys.exit(main())
