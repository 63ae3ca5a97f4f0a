r"""Ensembles on MovieLens-1M: does the mix beat every member?

  AUTOREC_DATA_DIR=/work/shared/data python experiments/ensemble_ml1m.py --out=/tmp/ens
  AUTOREC_DATA_DIR=/work/shared/data python experiments/ensemble_ml1m.py --out=/tmp/ens \
      --members=user,item,kernelnet,glocal_k --results=experiments/results/ensemble_kernel_ml1m.md
  AUTOREC_DATA_DIR=/work/shared/data python experiments/ensemble_ml1m.py --out=/tmp/ens \
      --members=user,item,kernelnet,kernelnet+seed=1,glocal_k

A member is a variant name, optionally followed by `+field=value` config overrides
(`kernelnet+seed=1`: the same model from another initialisation; the split's own
`data.seed` is not touched by `seed`).

Trains (or reuses, when OUT/ml1m_<member> holds a finished run) each member, a
variant of configs/movielens_1m.py (default: `:user` and `:item`), on the same data
and split, then scores on the test part: each member, their plain average, and the
blend whose weights are fitted on the validation part (ensemble.Ensemble.fit: least
squares with weights summing to 1; test ratings are never used for it). RMSE/MAE on every test
rating; NDCG@10 / Recall@10 ranking by the (mixed) unclipped scores, candidates the
trained items minus the user's train items, relevant = rating >= 4 (ranking.py).
Writes OUT/ensemble.json and --results (default experiments/results/ensemble_ml1m.md).
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import time

import numpy as np
from absl import flags
from ml_collections import config_flags

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from autorec_jax.runtime import cli  # noqa: E402
from autorec_jax.serving import api  # noqa: E402
from autorec_jax.serving import ensemble
from autorec_jax.serving import predict
from autorec_jax.training import registry
from configs import movielens_1m  # noqa: E402


def member_config(member: str):
  """The config of MEMBER, `variant` or `variant+field=value+...`: parsed as
  `python -m autorec_jax.main --config=configs/movielens_1m.py:variant
  --config.field=value ...` parses it (ml_collections' own override flags)."""
  variant, *overrides = member.split("+")
  argv = ["ensemble_ml1m", f"--config={movielens_1m.__file__}:{variant}"]
  argv += [f"--config.{override}" for override in overrides]
  fv = flags.FlagValues()
  config_flags.DEFINE_config_file("config", None, "", flag_values=fv, lock_config=True,
                                  sys_argv=argv)
  try:
    fv(argv)
    cfg = fv.config
    cfg.keys()  # the file is loaded on first access: its errors are raised here
    return cfg
  except (flags.Error, AttributeError, KeyError, TypeError, ValueError) as e:
    raise SystemExit(f"--members: {member!r}: {cli.config_error_line(e, argv)}") from None


def split_members(text: str) -> list[str]:
  """The members of a --members list: split at the commas outside brackets, so that
  `item+model.hidden=(725,),kernelnet` is two members."""
  members, depth, start = [], 0, 0
  for i, char in enumerate(text + ","):
    depth += (char in "([") - (char in ")]")
    if char == "," and depth == 0:
      members.append(text[start:i].strip())
      start = i + 1
  return [m for m in members if m]


def train_model(out: str, member: str) -> str:
  workdir = os.path.join(out, f"ml1m_{member}")
  if not os.path.exists(os.path.join(workdir, "results.json")):
    cfg = member_config(member)
    cfg.train.progress_bar = False
    t0 = time.time()
    registry.select(cfg)(cfg, workdir)
    print(f"trained {member} in {time.time() - t0:.0f}s", flush=True)
  return workdir


def compare(members: dict) -> tuple[dict, np.ndarray]:
  """({row name: metrics} for each member, the average and the fitted blend; weights)."""
  models = list(members.values())
  data = models[0].predictor.data
  lo, hi = models[0].rating_scale
  rank = dict(train=data.train, target=data.test, trained_items=models[0].trained_items,
              ks=(10,), threshold=lo + 0.75 * (hi - lo))
  average = ensemble.Ensemble.average(models)
  blend = ensemble.Ensemble.fit(models)
  weights = " / ".join(f"{w:.3f} {name}" for name, w in zip(members, blend.weights))
  rows = {}
  scorers = [(f"`:{name}`", model) for name, model in members.items()]
  scorers += [(f"average (1/{len(models)} each)", average),
              (f"blend fitted on validation ({weights})", blend)]
  for name, scorer in scorers:
    if isinstance(scorer, ensemble.Ensemble):
      test, valid = scorer.evaluate("test"), scorer.evaluate("valid")
    else:
      p = scorer.predictor
      test = predict.metrics(p.predict(data.test.user, data.test.item), data.test.rating)
      valid = predict.metrics(p.predict(data.valid.user, data.valid.item), data.valid.rating)
    m = ensemble.ranking_metrics(scorer.scores, **rank)
    rows[name] = {"test/rmse": test["rmse"], "test/mae": test["mae"],
                  "valid/rmse": valid["rmse"], "test/ndcg@10": m["ndcg@10"],
                  "test/recall@10": m["recall@10"], "count": test["count"]}
    print(name, json.dumps(rows[name]), flush=True)
  return rows, blend.weights


def markdown(rows: dict, out: str, members: list, num_valid: int, num_test: int) -> str:
  lines = [
      "# Ensembles on MovieLens-1M",
      "",
      f"`AUTOREC_DATA_DIR=/work/shared/data python experiments/ensemble_ml1m.py "
      f"--out={out} --members={shlex.quote(','.join(members))}`: configs/movielens_1m.py "
      "variants trained on the same seeded 90/10 split (5% of train for validation), "
      "best-by-validation checkpoints; 2-core CPU, float32. The blend weights are "
      f"fitted on the validation part only ({num_valid:,} ratings); every row is "
      f"measured on the same {num_test:,} test ratings.",
      "",
      "| model | test RMSE | test MAE | valid RMSE | NDCG@10 | Recall@10 |",
      "|---|---|---|---|---|---|",
  ]
  for name, r in rows.items():
    lines.append(f"| {name} | **{r['test/rmse']:.4f}** | {r['test/mae']:.4f} | "
                 f"{r['valid/rmse']:.4f} | {r['test/ndcg@10']:.4f} | "
                 f"{r['test/recall@10']:.4f} |")
  rmse = [r["test/rmse"] for r in rows.values()]
  best = min(rmse[:len(members)])
  lines += ["", f"Best member {best:.4f}; average {rmse[-2]:.4f} ({rmse[-2] - best:+.4f}), "
            f"fitted blend {rmse[-1]:.4f} ({rmse[-1] - best:+.4f})."]
  return "\n".join(lines) + "\n"


def main():
  parser = argparse.ArgumentParser(description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--out", default="/tmp/ensemble_ml1m")
  parser.add_argument("--members", default="user,item",
                      help="comma-separated variants of configs/movielens_1m.py, each optionally "
                           "with `+field=value` overrides")
  parser.add_argument("--results", default=os.path.join(
      os.path.dirname(os.path.abspath(__file__)), "results", "ensemble_ml1m.md"))
  args = parser.parse_args()
  os.makedirs(args.out, exist_ok=True)
  names = split_members(args.members)
  if len(names) < 2:
    parser.error("--members needs at least two variants")
  members = {name: api.load(train_model(args.out, name)) for name in names}
  rows, weights = compare(members)
  with open(os.path.join(args.out, "ensemble.json"), "w", encoding="utf-8") as f:
    json.dump({"members": names, "weights": weights.tolist(), "rows": rows}, f, indent=2)
  data = next(iter(members.values())).predictor.data
  os.makedirs(os.path.dirname(args.results), exist_ok=True)
  with open(args.results, "w", encoding="utf-8") as f:
    f.write(markdown(rows, args.out, names, data.valid.num_ratings, data.test.num_ratings))
  print(f"wrote {args.results}")


if __name__ == "__main__":
  main()
