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
comments and a first line `user`/`user_id`/`userId`/`users`/`id` are skipped).
--ratings: a new user's `item,rating` lines (exactly two fields, separated by `::`,
`,`, a tab, `;` or spaces; an optional header line): the model folds them in without
retraining (--fold_in_method: see api.Model.fold_in). Both files are UTF-8 (a byte
order mark is skipped; \r\n line ends are fine). Every id must be one of the run's
(exactly: `1001`, not `1001.0`), each item given once, each rating a finite number in
the run's rating scale; anything else stops the tool with `FILE:LINE: expected ...,
got ...` before a list is made. Both files are read before the model is loaded.
--output writes CSV (`user_id,rank,item_id,prediction,score,title`) or JSON lines
(one object per user), by its extension; an existing file is replaced only with
--overwrite, and the file is written under a temporary name and renamed when
complete.
--predict=ID,ID prints the predicted rating of those items for the user as well.
"""

from __future__ import annotations

import codecs
import csv
import json
import math
import os
import re
import sys
from typing import Iterator

from absl import app, flags

from autorec_jax.data.errors import DataFormatError, DataNotFoundError
from autorec_jax.runtime import cli
from autorec_jax.serving import ids as ids_lib

_USER_HEADER = {"user", "user_id", "userid", "users", "id"}
_ITEM_HEADER = {"item", "item_id", "itemid", "items", "movie", "movieid", "movie_id", "id"}
_RATING_HEADER = {"rating", "ratings", "score", "stars", "value"}
_NUMBER = re.compile(r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?")


def _text_lines(path: str, what: str) -> Iterator[tuple[int, str]]:
  """(line number, text without its line end) of a UTF-8 text file's lines.

  A UTF-8 byte order mark is skipped and \r\n line ends are fine; a UTF-16 file, a
  NUL byte, bytes that are not UTF-8 and lines separated by \r alone are
  DataFormatErrors naming the file and line.
  """
  if not path:
    raise ValueError(f"the {what} file path is empty")
  if not os.path.exists(path):
    raise DataNotFoundError(f"{path}: no such {what} file")
  if os.path.isdir(path):
    raise DataFormatError(path, None, f"expected a {what} file, got a folder")
  with open(path, "rb") as f:
    for no, raw in enumerate(f, start=1):
      if no == 1:
        if raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
          raise DataFormatError(path, 1, "expected UTF-8 text, got UTF-16 (the file starts "
                                "with its byte order mark); save it as UTF-8")
        raw = raw.removeprefix(codecs.BOM_UTF8)
      if b"\x00" in raw:
        raise DataFormatError(path, no, "expected UTF-8 text, got a NUL byte (UTF-16 text "
                              "or a binary file?)")
      try:
        text = raw.decode("utf-8")
      except UnicodeDecodeError as e:
        raise DataFormatError(path, no, f"expected UTF-8 text, got the byte "
                              f"0x{raw[e.start]:02x}; save the file as UTF-8") from None
      text = text.removesuffix("\n").removesuffix("\r")
      if "\r" in text:
        raise DataFormatError(path, no, "expected lines ending in \\n or \\r\\n, got lines "
                              "separated by \\r alone (classic Mac OS); convert the line "
                              "endings")
      yield no, text


def _data_lines(path: str, what: str) -> Iterator[tuple[int, str]]:
  """`_text_lines` without blank lines and `#` comment lines."""
  for no, text in _text_lines(path, what):
    if text.strip() and not text.lstrip().startswith("#"):
      yield no, text.strip()


def _fields(line: str) -> list[str]:
  """A line's fields: split on `::`, else `,`, else a tab, else `;`, else runs of
  spaces (the first separator the line holds), each stripped."""
  for sep in ("::", ",", "\t", ";"):
    if sep in line:
      return [f.strip() for f in line.split(sep)]
  return line.split()


def read_user_lines(path: str) -> list[tuple[int, str]]:
  """(line number, user id) of a users file: one id per line, the line's first field;
  blank lines, `#` comments and a first line naming the column (`user`, `user_id`,
  `userId`, `users`, `id`) are skipped."""
  rows = []
  for no, line in _data_lines(path, "users"):
    first = _fields(line)[0]
    if not rows and first.lower() in _USER_HEADER:
      continue
    if not first:
      raise DataFormatError(path, no, f"expected a user id as the first field, got an empty "
                            f"field in {line[:80]!r}")
    rows.append((no, first))
  if not rows:
    raise DataFormatError(path, None, "expected user ids, one per line, got none")
  return rows


def read_user_ids(path: str) -> list[str]:
  """User ids from a file, one per line (its first field): see read_user_lines."""
  return [user for _, user in read_user_lines(path)]


def read_rating_lines(path: str) -> list[tuple[int, str, float]]:
  """(line number, item id, rating) of a new user's ratings file: `item,rating` lines
  (exactly two fields, split as `_fields` says), the rating a finite decimal number;
  blank lines, `#` comments and a header line (`item,rating`, `movieId,rating`, ...)
  first are skipped."""
  rows = []
  for no, line in _data_lines(path, "ratings"):
    fields = _fields(line)
    if len(fields) != 2 or not all(fields):
      got = f"{len(fields)} fields" if len(fields) != 2 else "an empty field"
      raise DataFormatError(path, no, f"expected item,rating (2 fields), got {got}: "
                            f"{line[:80]!r}")
    item, rating = fields
    if not _NUMBER.fullmatch(rating):
      if not rows and (item.lower() in _ITEM_HEADER or rating.lower() in _RATING_HEADER):
        continue  # a header line
      raise DataFormatError(path, no, f"expected a finite number as the rating, got "
                            f"{rating[:40]!r}")
    value = float(rating)
    if not math.isfinite(value):
      raise DataFormatError(path, no, f"expected a finite number as the rating, got "
                            f"{rating[:40]!r}")
    rows.append((no, item, value))
  if not rows:
    raise DataFormatError(path, None, "expected item,rating lines, got none")
  return rows


def read_new_ratings(path: str) -> list[tuple[str, float]]:
  """A new user's (item id, rating) pairs: see read_rating_lines."""
  return [(item, rating) for _, item, rating in read_rating_lines(path)]


def _first_problem(path: str, problems: list[tuple[int, str]]) -> None:
  """Raises DataFormatError at the first (line, message) of `problems`, counting the
  rest, if there are any."""
  if not problems:
    return
  no, message = problems[0]
  if len(problems) > 1:
    rest = problems[1:]
    message += (f" (and {len(rest)} more problem line{'s' if len(rest) > 1 else ''}, the "
                f"next at line {rest[0][0]})")
  raise DataFormatError(path, no, message)


def check_users(model, path: str, rows: list[tuple[int, str]]) -> None:
  """DataFormatError at the first line of a users file whose id is not one of the
  run's users (not an id of the data set's kind, or unknown)."""
  pos = model.lookup([user for _, user in rows], "user")
  kind = model.id_kind("user")
  problems = []
  for (no, user), p in zip(rows, pos.tolist()):
    if p == ids_lib.INVALID:
      problems.append((no, f"expected a user id of the run's data set ({kind}), got "
                           f"{user[:40]!r}"))
    elif p == ids_lib.UNKNOWN:
      problems.append((no, f"unknown user id {user[:40]!r}: the run's data set has no such "
                           "user (a new user's ratings go to --ratings)"))
  _first_problem(path, problems)


def check_new_ratings(model, path: str, rows: list[tuple[int, str, float]]) -> None:
  """DataFormatError at the first line of a ratings file that the model cannot take:
  an item id that is not one of the run's items, an item given twice, a rating
  outside the run's rating scale."""
  pos = model.lookup([item for _, item, _ in rows], "item")
  kind = model.id_kind("item")
  lo, hi = model.rating_scale
  first_at: dict[int, int] = {}
  problems = []
  for (no, item, rating), p in zip(rows, pos.tolist()):
    if p == ids_lib.INVALID:
      problems.append((no, f"expected an item id of the run's data set ({kind}), got "
                           f"{item[:40]!r}"))
    elif p == ids_lib.UNKNOWN:
      problems.append((no, f"unknown item id {item[:40]!r}: the run's data set has no such "
                           "item"))
    elif p in first_at:
      problems.append((no, f"expected each item once, got item {item[:40]} again (first at "
                           f"line {first_at[p]})"))
    elif not lo <= rating <= hi:
      problems.append((no, f"expected a rating in [{lo:g}, {hi:g}] (the run's rating "
                           f"scale), got {rating:g}"))
    first_at.setdefault(p, no)
  _first_problem(path, problems)


def check_flag_ids(model, flag: str, values: list[str], what: str) -> None:
  """ValueError naming the flag and the values that are not ids of the run's data set
  (at most a few of them, then `and N more`)."""
  pos = model.lookup(values, what).tolist()

  def listed(bad):
    more = f" and {len(bad) - ids_lib.SHOWN} more" if len(bad) > ids_lib.SHOWN else ""
    return ", ".join(bad[:ids_lib.SHOWN]) + more

  bad = [v for v, p in zip(values, pos) if p == ids_lib.INVALID]
  if bad:
    raise ValueError(f"{flag}={','.join(values)[:80]}: expected {what} ids of the run's data "
                     f"set ({model.id_kind(what)}), got {listed(bad)}")
  unknown = [v for v, p in zip(values, pos) if p == ids_lib.UNKNOWN]
  if unknown:
    hint = "; a new user's ratings go to --ratings" if what == "user" else ""
    raise ValueError(f"{flag}={','.join(values)[:80]}: unknown {what} id"
                     f"{'s' if len(unknown) > 1 else ''} {listed(unknown)}: the run's data "
                     f"set has no such {what}{hint}")


def format_table(user: str, recs, note: str = "") -> str:
  """The printed list: rank, item id, predicted rating, title."""
  lines = [f"Top {len(recs)} for user {user}{note}:",
           f"{'rank':>4}  {'item':>8}  {'rating':>6}  title"]
  for rank, r in enumerate(recs, start=1):
    lines.append(f"{rank:>4}  {str(r.item_id):>8}  {r.prediction:>6.3f}  {r.title or ''}")
  return "\n".join(lines)


def check_output(path: str, overwrite: bool) -> None:
  """--output must end in .csv or .jsonl and be a file that may be written."""
  ext = os.path.splitext(path)[1].lower()
  if ext not in (".csv", ".jsonl"):
    raise ValueError(f"--output must end in .csv or .jsonl, got {path!r}")
  cli.check_output_file(path, overwrite=overwrite)


def write_output(path: str, results: list[tuple[str, list]]) -> None:
  """CSV or JSON lines, by extension, written atomically."""
  ext = os.path.splitext(path)[1].lower()
  if ext not in (".csv", ".jsonl"):
    raise ValueError(f"--output must end in .csv or .jsonl, got {path!r}")
  with cli.atomic_output(path, encoding="utf-8", newline="") as f:
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
_OVERWRITE = flags.DEFINE_bool("overwrite", False, "Replace an existing --output file.",
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


@cli.one_line_errors
def main(argv):
  del argv
  # pylint: disable=import-outside-toplevel
  from autorec_jax.runtime import console
  from autorec_jax.serving import api, predict

  modes = [m for m in (_USER.value, _USERS_FILE.value, _RATINGS.value) if m is not None]
  if len(modes) != 1:
    print("error: give exactly one of --user, --users-file, --ratings", file=sys.stderr)
    return 2
  if _PREDICT.value and _USERS_FILE.value is not None:
    raise ValueError("--predict goes with --user or --ratings, not --users-file")
  which = predict.parse_checkpoint(_CHECKPOINT.value, "--checkpoint")
  if _OUTPUT.value is not None:
    check_output(_OUTPUT.value, _OVERWRITE.value)
  # The input files are read before the model loads: a bad line is told at once.
  if _USERS_FILE.value is not None:
    user_rows = read_user_lines(_USERS_FILE.value)
  if _RATINGS.value is not None:
    rating_rows = read_rating_lines(_RATINGS.value)
  console.quiet_library_logs()
  cli.quiet_checkpoint_logs()
  model = api.load(_WORKDIR.value, which)
  if _TITLES.value:
    model.set_titles(_TITLES.value)
  predicted = ""
  if _RATINGS.value is not None:
    check_new_ratings(model, _RATINGS.value, rating_rows)
    if _PREDICT.value:
      check_flag_ids(model, "--predict", _PREDICT.value, "item")
    folded = model.fold_in([(item, rating) for _, item, rating in rating_rows],
                           method=_METHOD.value)
    if _PREDICT.value:
      predicted = _predictions(_PREDICT.value, folded.predict(_PREDICT.value))
    results = [("new", folded.recommend(_K.value))]
  else:
    if _USER.value is not None:
      users = [_USER.value.strip()]
      check_flag_ids(model, "--user", users, "user")
    else:
      check_users(model, _USERS_FILE.value, user_rows)
      users = [user for _, user in user_rows]
    if _PREDICT.value:
      check_flag_ids(model, "--predict", _PREDICT.value, "item")
    results = list(zip(users, model.recommend_many(users, _K.value, exclude=_EXCLUDE.value)))
    if _PREDICT.value:
      pred = model.predict([users[0]] * len(_PREDICT.value), _PREDICT.value)
      predicted = _predictions(_PREDICT.value, pred)
  if _OUTPUT.value is not None:
    write_output(_OUTPUT.value, results)
  if _USERS_FILE.value is None or _OUTPUT.value is None:
    for user, recs in results:
      print(format_table(user, recs))
  if predicted:
    print(predicted)
  if _OUTPUT.value is not None:
    print(f"wrote {len(results)} list(s) to {_OUTPUT.value} "
          f"(checkpoint of step {model.predictor.step}, epoch {model.predictor.epoch})")
  return 0


def _predictions(items, values) -> str:
  return "\n".join(f"predicted rating of item {i}: {v:.3f}" for i, v in zip(items, values))


if __name__ == "__main__":
  app.run(main, flags_parser=cli.parser(FLAGS, required=("workdir",)))
