r"""Top-K recommendations from a trained run, for known users or a new one.

  python -m autorec_jax.serving.recommend --workdir=runs/movielens_1m --user=1 --k=10
  python -m autorec_jax.serving.recommend --workdir=runs/movielens_1m --users-file=users.txt \
      --k=20 --output=recs.csv              # or recs.jsonl
  python -m autorec_jax.serving.recommend --workdir=runs/movielens_1m --ratings=me.csv --k=10

Ids are the data set's own. The best checkpoint is used (--checkpoint to change it).
A list holds the k items with the highest predicted rating among the items the model
was trained on, without the items the user has rated (anywhere in the data set with
--exclude=all, the default; in the run's train part with --exclude=train, as the
ranking metrics do). Titles come from the data set's titles file when one lies next
to the ratings (MovieLens movies.dat / movies.csv / u.item, Netflix movie_titles.txt)
or from --titles.

--users-file: one user id per line (the first field of the line; blank lines, `#`
comments and a `user`/`user_id`/`userId` header are skipped). --ratings: a new user's
`item,rating` lines (comma, tab, space or `::` separated, optional header): the
model folds them in without retraining (--fold_in_method: see api.Model.fold_in).
--output writes CSV (`user_id,rank,item_id,prediction,score,title`) or JSON lines
(one object per user), by its extension.
--predict=ID,ID prints the predicted rating of those items for the user as well.
"""

from __future__ import annotations

import csv
import json
import os
import re
import sys

from absl import app, flags

from autorec_jax.data.errors import DataError, DataFormatError, DataNotFoundError
from autorec_jax.runtime import cli

_HEADER_WORDS = {"user", "user_id", "userid", "users", "item", "item_id", "itemid",
                 "movie", "movieid", "movie_id"}
_SPLIT = re.compile(r"::|[,\t;]| +")


def _fields(line: str) -> list[str]:
  return [f.strip() for f in _SPLIT.split(line.strip()) if f.strip()]


def read_user_ids(path: str) -> list[str]:
  """User ids from a file, one per line (its first field)."""
  if not os.path.isfile(path):
    raise DataNotFoundError(f"{path}: no such users file")
  ids = []
  with open(path, encoding="utf-8") as f:
    for line in f:
      if not line.strip() or line.lstrip().startswith("#"):
        continue
      first = _fields(line)[0]
      if not ids and first.lower() in _HEADER_WORDS:
        continue
      ids.append(first)
  if not ids:
    raise DataFormatError(path, None, "expected user ids, one per line, got none")
  return ids


def read_new_ratings(path: str) -> list[tuple[str, float]]:
  """A new user's (item id, rating) pairs from `item,rating` lines."""
  if not os.path.isfile(path):
    raise DataNotFoundError(f"{path}: no such ratings file")
  pairs = []
  with open(path, encoding="utf-8") as f:
    for no, line in enumerate(f, start=1):
      if not line.strip() or line.lstrip().startswith("#"):
        continue
      fields = _fields(line)
      if len(fields) < 2:
        raise DataFormatError(path, no,
                              f"expected item,rating, got {line.strip()[:120]!r}")
      try:
        rating = float(fields[1])
      except ValueError:
        if not pairs and fields[0].lower() in _HEADER_WORDS:
          continue  # a header line
        raise DataFormatError(path, no, f"expected a number as the rating, got "
                              f"{fields[1]!r}") from None
      pairs.append((fields[0], rating))
  if not pairs:
    raise DataFormatError(path, None, "expected item,rating lines, got none")
  return pairs


def format_table(user: str, recs, note: str = "") -> str:
  """The printed list: rank, item id, predicted rating, title."""
  lines = [f"Top {len(recs)} for user {user}{note}:",
           f"{'rank':>4}  {'item':>8}  {'rating':>6}  title"]
  for rank, r in enumerate(recs, start=1):
    lines.append(f"{rank:>4}  {str(r.item_id):>8}  {r.prediction:>6.3f}  {r.title or ''}")
  return "\n".join(lines)


def write_output(path: str, results: list[tuple[str, list]]) -> None:
  """CSV or JSON lines, by extension, written atomically."""
  ext = os.path.splitext(path)[1].lower()
  if ext not in (".csv", ".jsonl"):
    raise ValueError(f"--output must end in .csv or .jsonl, got {path!r}")
  tmp = path + ".tmp"
  with open(tmp, "w", encoding="utf-8", newline="") as f:
    if ext == ".csv":
      w = csv.writer(f)
      w.writerow(["user_id", "rank", "item_id", "prediction", "score", "title"])
      for user, recs in results:
        for rank, r in enumerate(recs, start=1):
          w.writerow([user, rank, r.item_id, f"{r.prediction:.4f}", f"{r.score:.4f}",
                      r.title or ""])
    else:
      for user, recs in results:
        f.write(json.dumps({"user_id": user, "recommendations": [
            {"rank": rank, "item_id": r.item_id, "prediction": round(r.prediction, 4),
             "score": round(r.score, 4), "title": r.title}
            for rank, r in enumerate(recs, start=1)]}) + "\n")
  os.replace(tmp, path)


FLAGS = flags.FlagValues()
_WORKDIR = flags.DEFINE_string("workdir", None, "A trained run's workdir.", flag_values=FLAGS)
_CHECKPOINT = flags.DEFINE_string("checkpoint", "best",
                                  "best, latest, or a checkpoint's step number.",
                                  flag_values=FLAGS)
_USER = flags.DEFINE_string("user", None, "A user id of the data set.", flag_values=FLAGS)
_USERS_FILE = flags.DEFINE_string("users-file", None, "A file of user ids, one per line.",
                                  flag_values=FLAGS)
flags.DEFINE_alias("users_file", "users-file", flag_values=FLAGS)
_RATINGS = flags.DEFINE_string("ratings", None, "A new user's `item,rating` lines, folded in.",
                               flag_values=FLAGS)
_K = flags.DEFINE_integer("k", 10, "How many items to recommend.", lower_bound=1,
                          flag_values=FLAGS)
_OUTPUT = flags.DEFINE_string("output", None, "Write the lists here (.csv or .jsonl).",
                              flag_values=FLAGS)
_EXCLUDE = flags.DEFINE_enum("exclude", "all", ["all", "train"],
                             "Skip items the user rated anywhere (all) or in train.",
                             flag_values=FLAGS)
_TITLES = flags.DEFINE_string("titles", None, "A titles file (default: the data set's).",
                              flag_values=FLAGS)
_PREDICT = flags.DEFINE_list("predict", [], "Item ids whose predicted rating to print.",
                             flag_values=FLAGS)
_METHOD = flags.DEFINE_enum("fold_in_method", "auto", ["auto", "refine", "encode", "readout"],
                            "How --ratings are folded in (api.Model.fold_in).",
                            flag_values=FLAGS)


def main(argv):
  del argv
  from autorec_jax.serving import api  # pylint: disable=import-outside-toplevel
  from autorec_jax.runtime import console  # pylint: disable=import-outside-toplevel

  modes = [m for m in (_USER.value, _USERS_FILE.value, _RATINGS.value) if m is not None]
  if len(modes) != 1:
    print("error: give exactly one of --user, --users-file, --ratings", file=sys.stderr)
    return 2
  console.quiet_library_logs()
  try:
    model = api.load(_WORKDIR.value, _CHECKPOINT.value)
    if _TITLES.value:
      model.set_titles(_TITLES.value)
    results, extra = _run(model)
    if _OUTPUT.value:
      write_output(_OUTPUT.value, results)
  except (DataError, FileNotFoundError, ValueError) as e:
    print(f"error: {e}", file=sys.stderr)
    return 1
  if _USERS_FILE.value is None or not _OUTPUT.value:
    for user, recs in results:
      print(format_table(user, recs))
  if extra:
    print(extra)
  if _OUTPUT.value:
    print(f"wrote {len(results)} list(s) to {_OUTPUT.value} "
          f"(checkpoint of step {model.predictor.step}, epoch {model.predictor.epoch})")
  return 0


def _run(model) -> tuple[list[tuple[str, list]], str]:
  predicted = ""
  if _RATINGS.value is not None:
    folded = model.fold_in(read_new_ratings(_RATINGS.value), method=_METHOD.value)
    if _PREDICT.value:
      predicted = _predictions(_PREDICT.value, folded.predict(_PREDICT.value))
    return [("new", folded.recommend(_K.value))], predicted
  users = [_USER.value] if _USER.value is not None else read_user_ids(_USERS_FILE.value)
  recs = model.recommend_many(users, _K.value, exclude=_EXCLUDE.value)
  if _PREDICT.value and _USER.value is not None:
    pred = model.predict([_USER.value] * len(_PREDICT.value), _PREDICT.value)
    predicted = _predictions(_PREDICT.value, pred)
  return list(zip(users, recs)), predicted


def _predictions(items, values) -> str:
  return "\n".join(f"predicted rating of item {i}: {v:.3f}" for i, v in zip(items, values))


if __name__ == "__main__":
  app.run(main, flags_parser=cli.parser(FLAGS, required=("workdir",)))
