r"""New users without retraining, measured on MovieLens-1M: held-out users vs seen users.

  AUTOREC_DATA_DIR=/work/shared/data python experiments/fold_in.py --out=/tmp/fold_in

A seeded 10% of the users (`--holdout_fraction`) are removed from the data entirely;
the `:user` and `:item` models of configs/movielens_1m.py are trained on the other
users' ratings (written to OUT/seen_users.csv, trained with data.name=csv, one workdir
per model under OUT; a finished workdir is reused). Each held-out user's ratings are
then split exactly as a run splits ratings (the same make_split, 10% test, 5% of the
rest for validation, seed 0): the train part is what the user "gives" and is folded
in with `api.Model.fold_in`, the test part is predicted. The seen users' numbers are
the run's own test metrics (results.json); the held-out users get the same metrics:
RMSE on their test ratings, and NDCG@10 / Recall@10 over the trained items minus
the items they gave, relevant = rating >= 4. Item means (evaluate.py's fallback for a
user with no ratings) and, for ranking, the most rated items are the floor any
fold-in must beat.

A sample of `--refit_users` seen users is also folded in the way new users are (their
train ratings through fold_in), which separates what the fold-in method itself
changes from what leaving the user out of training loses.

Writes OUT/fold_in.json and a markdown table to --results (default
experiments/results/fold_in.md).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np
import pandas as pd

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from autorec_jax.data import datasets, splits  # noqa: E402
from autorec_jax.data.types import Ratings  # noqa: E402
from autorec_jax.serving import api  # noqa: E402
from autorec_jax.serving import ensemble
from autorec_jax.training import loop as train
from configs import movielens_1m  # noqa: E402

THRESHOLD = 4.0
# name -> (configs/movielens_1m.py variant, overrides)
VARIANTS = {
    "user": ("user", {}),
    "item": ("item", {}),
    # The same U-encoder trained to predict ratings hidden from its input (Strub &
    # Mary's masking noise): what fold-in asks of the encoder.
    "user_masking": ("user", {"noise.masking": 0.25}),
}


def write_seen(out: str, holdout_fraction: float, seed: int):
  """Writes the seen users' ratings; returns (all ratings, bool mask of held users)."""
  loaded = datasets.load(movielens_1m.get_config("item").data)
  ratings = loaded.ratings
  rng = np.random.default_rng([seed, 7])
  held_users = np.zeros(ratings.num_users, bool)
  held_users[rng.choice(ratings.num_users, int(round(holdout_fraction * ratings.num_users)),
                        replace=False)] = True
  path = os.path.join(out, "seen_users.csv")
  if not os.path.exists(path):
    seen = ~held_users[ratings.user]
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
      f.write("user_id,item_id,rating\n")
      np.savetxt(f, np.stack([ratings.user_ids[ratings.user[seen]],
                              ratings.item_ids[ratings.item[seen]],
                              ratings.rating[seen].astype(np.int64)], 1), fmt="%d",
                 delimiter=",")
    os.replace(tmp, path)
  return ratings, held_users, path


def train_model(out: str, variant: str, data_path: str, epochs: int | None) -> str:
  workdir = os.path.join(out, f"ml1m_{variant}_seen")
  if os.path.exists(os.path.join(workdir, "results.json")):
    return workdir
  arg, overrides = VARIANTS[variant]
  cfg = movielens_1m.get_config(arg)
  for key, value in overrides.items():
    group, field = key.split(".")
    cfg[group][field] = value
  cfg.data.name = "csv"
  cfg.data.path = data_path
  cfg.data.rating_min, cfg.data.rating_max = 1.0, 5.0
  cfg.train.progress_bar = False
  if epochs:
    cfg.train.num_epochs = epochs
  t0 = time.time()
  train.train_and_evaluate(cfg, workdir)
  print(f"trained {variant} in {time.time() - t0:.0f}s -> {workdir}", flush=True)
  return workdir


def held_out_parts(ratings: Ratings, held_users: np.ndarray, model: api.Model):
  """Held-out users' given / target ratings, indexed by (held user, model item)."""
  keep = held_users[ratings.user]
  user_ids = ratings.user_ids[ratings.user[keep]]
  item_ids = ratings.item_ids[ratings.item[keep]]
  rating = ratings.rating[keep]
  known = pd.Index(model.item_ids).get_indexer(item_ids)
  dropped = int(np.sum(known < 0))  # items no seen user rated: not in the model at all
  ok = known >= 0
  users, user = np.unique(user_ids[ok], return_inverse=True)
  part = Ratings(user=user.astype(np.int32), item=known[ok].astype(np.int32),
                 rating=rating[ok], timestamp=None, user_ids=users,
                 item_ids=model.item_ids)
  split = splits.make_split(part.num_ratings, test_fraction=0.1, num_folds=0, fold=0,
                            valid_fraction=0.05, seed=0)
  return part.subset(split.train), part.subset(split.test), dropped


def fold_in_scores(model: api.Model, given: Ratings, method: str = "auto") -> np.ndarray:
  """float32[users of `given`, I] unclipped fold-in scores."""
  out = np.zeros((given.num_users, len(model.item_ids)), np.float32)
  order = np.argsort(given.user, kind="stable")
  bounds = np.searchsorted(given.user[order], np.arange(given.num_users + 1))
  for u in range(given.num_users):
    rows = order[bounds[u]:bounds[u + 1]]
    pairs = zip(model.item_ids[given.item[rows]], given.rating[rows])
    out[u] = model.fold_in(list(pairs), method=method).scores
  return out


def rmse(pred, truth) -> float:
  err = np.asarray(pred, np.float64) - truth
  return float(np.sqrt(np.mean(err * err)))


def _metrics(model, scores, given, target) -> dict:
  """RMSE (clipped predictions) and ranking metrics of scores for given/target users."""
  rank = ensemble.ranking_metrics(lambda u: scores[u], train=given, target=target,
                                  trained_items=model.trained_items, ks=(10,),
                                  threshold=THRESHOLD)
  pred = np.clip(scores[target.user, target.item], *model.rating_scale)
  return {"rmse": rmse(pred, target.rating), "ndcg@10": rank["ndcg@10"],
          "recall@10": rank["recall@10"]}


def measure(model: api.Model, ratings, held_users, refit_users: int) -> dict:
  given, target, dropped = held_out_parts(ratings, held_users, model)
  res = json.load(open(os.path.join(model.workdir, "results.json"), encoding="utf-8"))
  out = {
      "orientation": model.orientation,
      "seen": {"users": int(len(np.unique(model.predictor.data.test.user))),
               "ratings": res["test/count"], "rmse": res["test/rmse"],
               "ndcg@10": res.get("test/ndcg@10"), "recall@10": res.get("test/recall@10")},
      "held_out": {"users": int(given.num_users), "given": int(given.num_ratings),
                   "ratings": int(target.num_ratings), "dropped_unknown_items": dropped},
  }
  for method in api.FOLD_IN_METHODS[model.orientation]:
    t0 = time.time()
    scores = fold_in_scores(model, given, method)
    out["held_out"][method] = {**_metrics(model, scores, given, target),
                               "seconds_per_user": (time.time() - t0) / given.num_users}
  # No fold-in: item means (evaluate.py's fallback) for RMSE; for ranking the most
  # rated items (item means would rank items with a single 5-star rating first).
  stats = model.predictor.train_stats
  means = np.where(np.isnan(stats.item_mean), stats.global_mean, stats.item_mean)
  popularity = np.bincount(model.predictor.data.train.item,
                           minlength=len(model.item_ids)).astype(np.float32)
  base = _metrics(model, np.tile(popularity, (given.num_users, 1)), given, target)
  base["rmse"] = rmse(np.clip(means[target.item], *model.rating_scale), target.rating)
  out["held_out"]["no_fold_in"] = base
  if refit_users:
    out["seen_refit"] = refit_seen(model, refit_users)
  return out


def refit_seen(model: api.Model, count: int) -> dict:
  """A sample of seen users' test metrics: by the trained model, and with their train
  ratings folded in as if they were new (each fold-in method)."""
  data = model.predictor.data
  rng = np.random.default_rng(0)
  users = np.sort(rng.choice(np.unique(data.test.user), count, replace=False))
  remap = np.full(data.train.num_users, -1, np.int32)
  remap[users] = np.arange(len(users))
  def sub(part):
    m = np.isin(part.user, users)
    return Ratings(user=remap[part.user[m]], item=part.item[m], rating=part.rating[m],
                   timestamp=None, user_ids=model.user_ids[users], item_ids=model.item_ids)
  given, target = sub(data.train), sub(data.test)
  out = {"users": int(len(users)), "ratings": int(target.num_ratings),
         "trained": _metrics(model, model.scores(users), given, target)}
  for method in api.FOLD_IN_METHODS[model.orientation]:
    if method != "encode":  # encoding a seen user's train row is the trained model
      out[method] = _metrics(model, fold_in_scores(model, given, method), given, target)
  return out


_METHOD_TEXT = {
    "refine": "held out, folded in: code refined (default)",
    "encode": "held out, folded in: code = encoder output",
    "readout": "held out, folded in: read-out fitted (default)",
}


def markdown(results: dict, args) -> str:
  lines = [
      "# Fold-in: users held out of training vs users seen in training (MovieLens-1M)",
      "",
      f"`AUTOREC_DATA_DIR=/work/shared/data python experiments/fold_in.py "
      f"--out={args.out}` (holdout fraction {args.holdout_fraction}, seed {args.seed}, "
      "2-core CPU, float32). Models: configs/movielens_1m.py variants trained on the "
      "seen users only. Held-out users' ratings are split like a run's (make_split: 10% "
      "test, 5% of the rest unused as validation, seed 0); the train part is folded in "
      "(api.Model.fold_in), the test part predicted. NDCG@10/Recall@10: candidates are "
      "the trained items minus the user's given (train) items, relevant = rating >= 4. "
      "The seen sample rows take 600 seen users and fold their train ratings in as if "
      "they were new, next to the trained model's predictions for the same users.",
      "",
      "| model | users | count | test ratings | RMSE | NDCG@10 | Recall@10 |",
      "|---|---|---|---|---|---|---|",
  ]
  def f(v, d=4):
    return "—" if v is None else f"{v:.{d}f}"
  def row(name, label, users, ratings, m, bold=False):
    value = f"**{f(m['rmse'])}**" if bold else f(m["rmse"])
    lines.append(f"| {name} | {label} | {users:,} | {ratings:,} | {value} | "
                 f"{f(m['ndcg@10'])} | {f(m['recall@10'])} |")
  for variant, r in results.items():
    s, h = r["seen"], r["held_out"]
    arg, overrides = VARIANTS[variant]
    name = ("U-encoder" if r["orientation"] == "user" else "V-encoder") + f" `:{arg}`"
    name += "".join(f" {k}={v}" for k, v in overrides.items())
    row(name, "seen in training", s["users"], s["ratings"], s, bold=True)
    for method in api.FOLD_IN_METHODS[r["orientation"]]:
      row(name, _METHOD_TEXT[method], h["users"], h["ratings"], h[method], bold=True)
    row(name, "held out, no fold-in: item means (RMSE), most rated items (ranking)",
        h["users"], h["ratings"], h["no_fold_in"])
    if "seen_refit" in r:
      rf = r["seen_refit"]
      row(name, "seen sample, trained model", rf["users"], rf["ratings"], rf["trained"])
      for method in api.FOLD_IN_METHODS[r["orientation"]]:
        if method in rf:
          row(name, f"seen sample, train ratings folded in ({method})", rf["users"],
              rf["ratings"], rf[method])
  lines.append("")
  for variant, r in results.items():
    h, s = r["held_out"], r["seen"]
    gaps = ", ".join(f"{m} {h[m]['rmse'] - s['rmse']:+.4f} "
                     f"({h[m]['seconds_per_user'] * 1000:.0f} ms/user)"
                     for m in api.FOLD_IN_METHODS[r["orientation"]])
    lines.append(f"- `{variant}`: held-out minus seen RMSE: {gaps}; {h['given']:,} given "
                 f"ratings folded in; {h['dropped_unknown_items']} held-out ratings of items "
                 "no seen user rated were dropped (not in the model).")
  return "\n".join(lines) + "\n"


def main():
  parser = argparse.ArgumentParser(description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--out", default="/tmp/fold_in")
  parser.add_argument("--results", default=os.path.join(
      os.path.dirname(os.path.abspath(__file__)), "results", "fold_in.md"))
  parser.add_argument("--variants", default="user,item,user_masking",
                      help=f"comma-separated, of {', '.join(VARIANTS)}")
  parser.add_argument("--holdout_fraction", type=float, default=0.1)
  parser.add_argument("--seed", type=int, default=0)
  parser.add_argument("--epochs", type=int, default=None)
  parser.add_argument("--refit_users", type=int, default=600)
  args = parser.parse_args()
  os.makedirs(args.out, exist_ok=True)
  ratings, held_users, path = write_seen(args.out, args.holdout_fraction, args.seed)
  results = {}
  saved = os.path.join(args.out, "fold_in.json")
  if os.path.exists(saved):  # variants measured by an earlier call stay in the table
    with open(saved, encoding="utf-8") as f:
      results = {k: v for k, v in json.load(f).items() if k in VARIANTS}
  for variant in args.variants.split(","):
    workdir = train_model(args.out, variant, path, args.epochs)
    results[variant] = measure(api.load(workdir), ratings, held_users, args.refit_users)
    print(json.dumps(results[variant], indent=1), flush=True)
  with open(saved, "w", encoding="utf-8") as f:
    json.dump(results, f, indent=2)
  os.makedirs(os.path.dirname(args.results), exist_ok=True)
  with open(args.results, "w", encoding="utf-8") as f:
    f.write(markdown(results, args))
  print(f"wrote {args.results}")


if __name__ == "__main__":
  main()
