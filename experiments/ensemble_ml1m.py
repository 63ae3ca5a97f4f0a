r"""U- and V-encoder ensemble on MovieLens-1M: does the mix beat both members?

  AUTOREC_DATA_DIR=/work/shared/data python experiments/ensemble_ml1m.py --out=/tmp/ens

Trains (or reuses, when OUT/ml1m_user and OUT/ml1m_item hold finished runs) the
`:user` and `:item` models of configs/movielens_1m.py, on the same data and split,
then scores on the test part: each member, their plain average, and the blend whose
weight is fitted on the validation part (ensemble.Ensemble.fit: least squares with
weights summing to 1; test ratings are never used for it). RMSE/MAE on every test
rating; NDCG@10 / Recall@10 ranking by the (mixed) unclipped scores, candidates the
trained items minus the user's train items, relevant = rating >= 4 (ranking.py).
Writes OUT/ensemble.json and --results (default experiments/results/ensemble_ml1m.md).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from autorec_jax.serving import api  # noqa: E402
from autorec_jax.serving import ensemble
from autorec_jax.serving import predict
from autorec_jax.training import loop as train
from configs import movielens_1m  # noqa: E402


def train_model(out: str, variant: str) -> str:
  workdir = os.path.join(out, f"ml1m_{variant}")
  if not os.path.exists(os.path.join(workdir, "results.json")):
    cfg = movielens_1m.get_config(variant)
    cfg.train.progress_bar = False
    t0 = time.time()
    train.train_and_evaluate(cfg, workdir)
    print(f"trained {variant} in {time.time() - t0:.0f}s", flush=True)
  return workdir


def compare(user: api.Model, item: api.Model) -> tuple[dict, np.ndarray]:
  """({row name: metrics} for each member, the average and the fitted blend; weights)."""
  data = user.predictor.data
  lo, hi = user.rating_scale
  rank = dict(train=data.train, target=data.test, trained_items=user.trained_items,
              ks=(10,), threshold=lo + 0.75 * (hi - lo))
  average = ensemble.Ensemble.average([user, item])
  blend = ensemble.Ensemble.fit([user, item])
  rows = {}
  for name, scorer in (("U-encoder `:user`", user), ("V-encoder `:item`", item),
                       ("average (0.5 / 0.5)", average),
                       (f"blend fitted on validation ({blend.weights[0]:.3f} U / "
                        f"{blend.weights[1]:.3f} V)", blend)):
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


def markdown(rows: dict, out: str, num_valid: int, num_test: int) -> str:
  lines = [
      "# U + V encoder ensemble on MovieLens-1M",
      "",
      f"`AUTOREC_DATA_DIR=/work/shared/data python experiments/ensemble_ml1m.py "
      f"--out={out}`: configs/movielens_1m.py `:user` and `:item` trained on the "
      "same seeded 90/10 split (5% of train for validation), best-by-validation "
      "checkpoints; 2-core CPU, float32. The blend weight is fitted on the validation "
      f"part only ({num_valid:,} ratings); every row is measured on the "
      f"same {num_test:,} test ratings.",
      "",
      "| model | test RMSE | test MAE | valid RMSE | NDCG@10 | Recall@10 |",
      "|---|---|---|---|---|---|",
  ]
  for name, r in rows.items():
    lines.append(f"| {name} | **{r['test/rmse']:.4f}** | {r['test/mae']:.4f} | "
                 f"{r['valid/rmse']:.4f} | {r['test/ndcg@10']:.4f} | "
                 f"{r['test/recall@10']:.4f} |")
  rmse = [r["test/rmse"] for r in rows.values()]
  best = min(rmse[:2])
  lines += ["", f"Best member {best:.4f}; average {rmse[2]:.4f} ({rmse[2] - best:+.4f}), "
            f"fitted blend {rmse[3]:.4f} ({rmse[3] - best:+.4f})."]
  return "\n".join(lines) + "\n"


def main():
  parser = argparse.ArgumentParser(description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--out", default="/tmp/ensemble_ml1m")
  parser.add_argument("--results", default=os.path.join(
      os.path.dirname(os.path.abspath(__file__)), "results", "ensemble_ml1m.md"))
  args = parser.parse_args()
  os.makedirs(args.out, exist_ok=True)
  user = api.load(train_model(args.out, "user"))
  item = api.load(train_model(args.out, "item"))
  rows, weights = compare(user, item)
  with open(os.path.join(args.out, "ensemble.json"), "w", encoding="utf-8") as f:
    json.dump({"weights": weights.tolist(), "rows": rows}, f, indent=2)
  data = user.predictor.data
  os.makedirs(os.path.dirname(args.results), exist_ok=True)
  with open(args.results, "w", encoding="utf-8") as f:
    f.write(markdown(rows, args.out, data.valid.num_ratings, data.test.num_ratings))
  print(f"wrote {args.results}")


if __name__ == "__main__":
  main()
