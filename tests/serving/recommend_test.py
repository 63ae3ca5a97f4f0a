import csv
import re
import json
import subprocess
import sys

import jax.numpy as jnp
import numpy as np
import pytest

from autorec_jax.data.errors import DataFormatError
from autorec_jax.serving import api
from autorec_jax.serving import predict
from autorec_jax.serving import recommend
from autorec_jax.training import loop as train
from configs import movielens_1m
from tests import conftest, trained_runs


def _main(capsys, *args):
  """Runs the CLI's main in this process (its flags are its own FlagValues)."""
  recommend.FLAGS.unparse_flags()
  recommend.FLAGS(["recommend", *map(str, args)])
  rc = recommend.main(["recommend"])
  captured = capsys.readouterr()
  return rc, captured.out, captured.err


def _cli(*args, timeout=180):
  return subprocess.run([sys.executable, "-m", "autorec_jax.serving.recommend", *map(str, args)],
                        cwd=conftest.REPO, capture_output=True, text=True, timeout=timeout)


def _listed_items(stdout: str) -> list[int]:
  """Item ids of the printed table rows (`rank item rating title`)."""
  rows = [l.split() for l in stdout.splitlines()]
  return [int(r[1]) for r in rows if len(r) >= 3 and r[0].isdigit()]


def _hand_top(predictor, u: int, k: int, exclude_ui) -> list:
  """Top-k of the model's dense output for user index u, ranked by hand."""
  x = predictor._train_csr.toarray()
  out = np.asarray(predictor.model.apply({"params": predictor.params}, jnp.asarray(x),
                                         train=False))
  out = predictor._pre.inverse(out, predictor._pre.row_bias)
  s = out[u] if predictor.orientation == "user" else out[:, u]
  s = s.astype(np.float64)
  trained = np.bincount(predictor.data.train.item,
                        minlength=predictor.data.train.num_items) > 0
  s[~trained] = -np.inf
  s[exclude_ui[u].indices] = -np.inf
  ids = predictor.data.loaded.ratings.item_ids
  return ids[np.argsort(-s, kind="stable")[:k]].tolist()


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
  return trained_runs.tiny_run(tmp_path_factory, "item")


def test_read_user_ids_and_new_ratings(tmp_path):
  users = tmp_path / "users.txt"
  users.write_text("user_id\n# a comment\n1001\n\n1002,extra\n1003 x\n")
  assert recommend.read_user_ids(str(users)) == ["1001", "1002", "1003"]
  ratings = tmp_path / "me.csv"
  ratings.write_text("item,rating\n501,5\n502\t3.5\n503::1\n")
  assert recommend.read_new_ratings(str(ratings)) == [("501", 5.0), ("502", 3.5),
                                                      ("503", 1.0)]
  ratings.write_text("501,5\n502,good\n")
  with pytest.raises(DataFormatError, match=r"me\.csv:2: expected a finite number"):
    recommend.read_new_ratings(str(ratings))
  ratings.write_text("501\n")
  with pytest.raises(DataFormatError, match=r"me\.csv:1: expected item,rating"):
    recommend.read_new_ratings(str(ratings))
  users.write_text("# nothing\n")
  with pytest.raises(DataFormatError, match="got none"):
    recommend.read_user_ids(str(users))


def test_cli_one_user_with_titles(workdir, tmp_path, capsys):
  model = api.load(str(workdir))
  names = tmp_path / "movies.dat"
  names.write_text("".join(f"{i}::Film number {i} (2001)::Drama\n" for i in model.item_ids))
  uid = int(model.user_ids[4])
  rc, out, err = _main(capsys, f"--workdir={workdir}", f"--user={uid}", "--k=5",
                       f"--titles={names}", "--exclude=train",
                       f"--predict={model.item_ids[0]},{model.item_ids[1]}")
  assert rc == 0, err
  expected = [r.item_id for r in model.recommend(uid, k=5, exclude="train")]
  assert _listed_items(out) == expected
  assert f"Top 5 for user {uid}:" in out
  assert f"Film number {expected[0]} (2001)" in out
  pred = model.predict([uid, uid], model.item_ids[:2])
  assert f"predicted rating of item {model.item_ids[0]}: {pred[0]:.3f}" in out


def test_cli_users_file_to_csv_and_jsonl(workdir, tmp_path, capsys):
  model = api.load(str(workdir))
  users = [str(u) for u in model.user_ids[:3]]
  (tmp_path / "users.txt").write_text("\n".join(users) + "\n")
  for ext in ("csv", "jsonl"):
    out = tmp_path / f"recs.{ext}"
    rc, stdout, err = _main(capsys, f"--workdir={workdir}",
                            f"--users-file={tmp_path / 'users.txt'}", "--k=4",
                            f"--output={out}")
    assert rc == 0, err
    assert f"wrote 3 list(s) to {out}" in stdout
    expected = model.recommend_many(users, k=4)
    if ext == "csv":
      rows = list(csv.DictReader(out.open()))
      assert [r["user_id"] for r in rows] == [u for u in users for _ in range(4)]
      assert [int(r["item_id"]) for r in rows] == [r.item_id for e in expected for r in e]
      assert [int(r["rank"]) for r in rows[:4]] == [1, 2, 3, 4]
    else:
      lines = [json.loads(l) for l in out.read_text().splitlines()]
      assert [l["user_id"] for l in lines] == users
      assert [[r["item_id"] for r in l["recommendations"]] for l in lines] == [
          [r.item_id for r in e] for e in expected]


def test_cli_new_user_ratings_fold_in(workdir, tmp_path, capsys):
  model = api.load(str(workdir))
  items = model.item_ids[model.trained_items][:6]
  me = tmp_path / "me.csv"
  me.write_text("item,rating\n" + "".join(f"{i},{r}\n" for i, r in zip(items, [5, 4, 1, 2,
                                                                                5, 3])))
  rc, out, err = _main(capsys, f"--workdir={workdir}", f"--ratings={me}", "--k=3",
                       f"--predict={items[0]}")
  assert rc == 0, err
  folded = model.fold_in(list(zip(items, [5, 4, 1, 2, 5, 3])))
  assert _listed_items(out) == [r.item_id for r in folded.recommend(3)]
  assert not set(_listed_items(out)) & set(items.tolist())
  assert f"predicted rating of item {items[0]}: {folded.predict([items[0]])[0]:.3f}" in out


def test_cli_errors_are_one_line(workdir, tmp_path, capsys):
  rc, _, err = _main(capsys, f"--workdir={workdir}", "--user=1")
  assert rc == 1 and err.strip() == ("error: --user=1: unknown user id 1: the run's data "
                                     "set has no such user; a new user's ratings go to "
                                     "--ratings")
  rc, _, err = _main(capsys, f"--workdir={workdir}")
  assert rc == 2 and "exactly one of" in err
  rc, _, err = _main(capsys, f"--workdir={workdir}", "--user=1001",
                     f"--output={tmp_path / 'x.txt'}")
  assert rc == 1 and ".csv or .jsonl" in err
  rc, _, err = _main(capsys, f"--workdir={tmp_path / 'nope'}", "--user=1001")
  assert rc == 1 and "not a run's workdir" in err
  proc = _cli("--user=1")  # the real entry point: flag errors before anything loads
  assert proc.returncode == 2 and "--workdir must be given" in proc.stderr
  assert "Traceback" not in proc.stderr


def test_movielens_1m_top10_has_titles_no_rated_items_and_ranks_the_dense_output(
    tmp_path):
  """A one-epoch user-based model on the real MovieLens-1M: the CLI's top-10 of user 1."""
  ratings = conftest.require_data("movielens-1m/ratings_no_timestamps.csv.gz")
  cfg = movielens_1m.get_config("user")
  cfg.data.path = str(ratings)
  cfg.model.hidden = (32,)
  cfg.train.num_epochs = 1
  cfg.train.batch_size = 256
  cfg.train.progress_bar = False
  cfg.eval.ranking_ks = ()
  train.train_and_evaluate(cfg, str(tmp_path / "run"))
  proc = _cli(f"--workdir={tmp_path / 'run'}", "--user=1", "--k=10", "--exclude=train",
              timeout=300)
  assert proc.returncode == 0, proc.stderr[-2000:]
  listed = _listed_items(proc.stdout)
  assert len(listed) == 10
  p = predict.Predictor(str(tmp_path / "run"))
  u = int(np.flatnonzero(p.data.loaded.ratings.user_ids == 1)[0])
  train_ui = p.data.train.to_csr("user")
  rated = set(p.data.loaded.ratings.item_ids[train_ui[u].indices].tolist())
  assert not rated & set(listed)
  assert listed == _hand_top(p, u, 10, train_ui)
  titles = [l for l in proc.stdout.splitlines() if l.strip()[:1].isdigit()]
  assert all(l.rstrip().endswith(")") for l in titles), titles  # "Title (Year)"
  assert "Toy Story (1995)" in (conftest.shared_data_dir() / "movielens-1m" /
                                "movies.dat").read_text("iso-8859-1")
  # Excluding every rating the user has in the data set (the default) removes more.
  proc = _cli(f"--workdir={tmp_path / 'run'}", "--user=1", "--k=10", timeout=300)
  all_ui = p.data.loaded.ratings.to_csr("user")
  assert not set(_listed_items(proc.stdout)) & set(
      p.data.loaded.ratings.item_ids[all_ui[u].indices].tolist())


@pytest.fixture(scope="module")
def model(workdir):
  return api.load(str(workdir))


@pytest.mark.parametrize("text,line,pattern", [
    ("501,5\n502,4\n99999,3\n", 3, r"unknown item id '99999': the run's data set has no such "
                                   r"item"),
    ("501,5\n502,4\n501,3\n", 3, r"expected each item once, got item 501 again \(first at "
                                 r"line 1\)"),
    ("501,5\n502,7\n", 2, r"expected a rating in \[1, 5\] \(the run's rating scale\), got 7"),
    ("501,5\n502,0.5\n", 2, r"expected a rating in \[1, 5\] .*got 0\.5"),
    ("501,5\n502,nan\n", 2, r"expected a finite number as the rating, got 'nan'"),
    ("501,5\n502,good\n", 2, r"expected a finite number as the rating, got 'good'"),
    ("501,5\n502,1e999\n", 2, r"expected a finite number as the rating, got '1e999'"),
    ("abc,5\n", 1, r"expected an item id of the run's data set \(integers\), got 'abc'"),
    ("501.5,5\n", 1, r"expected an item id .*got '501\.5'"),
    ("1001,501,5\n", 1, r"expected item,rating \(2 fields\), got 3 fields: '1001,501,5'"),
    ("501,,5\n", 1, r"expected item,rating \(2 fields\), got 3 fields"),
    ("501,\n", 1, r"expected item,rating \(2 fields\), got an empty field"),
    ("501,5\r502,4\r", 1, r"expected lines ending in .* got lines separated by \\r alone"),
    ("50\xe9,5\n".encode("latin-1"), 1, r"expected UTF-8 text, got the byte 0xe9"),
    ("501,5\n".encode("utf-16"), 1, r"expected UTF-8 text, got UTF-16"),
    ("# only a comment\n\n", None, r"expected item,rating lines, got none"),
    ("", None, r"expected item,rating lines, got none"),
])
def test_ratings_file_errors_name_the_line_and_value(model, tmp_path, text, line, pattern):
  path = tmp_path / "me.csv"
  if isinstance(text, bytes):
    path.write_bytes(text)
  else:
    path.write_text(text, encoding="utf-8", newline="")
  where = f"{path}:{line}: " if line is not None else f"{path}: "
  with pytest.raises(DataFormatError, match=re.escape(where) + pattern):
    recommend.check_new_ratings(model, str(path), recommend.read_rating_lines(str(path)))


def test_ratings_file_bom_crlf_comments_and_header(model, tmp_path):
  a, b = model.item_ids[model.trained_items][:2]
  path = tmp_path / "me.csv"
  path.write_bytes(f"\ufeff# mine\r\nmovieId,rating\r\n\r\n{a},5\r\n  {b} ; 1.5 \r\n"
                   .encode("utf-8"))
  rows = recommend.read_rating_lines(str(path))
  assert rows == [(4, str(a), 5.0), (5, str(b), 1.5)]
  recommend.check_new_ratings(model, str(path), rows)


def test_users_file_errors_name_the_line_and_stay_short(model, workdir, tmp_path, capsys):
  users = [str(u) for u in model.user_ids]
  path = tmp_path / "users.txt"
  path.write_text("user\n" + "\n".join(users[:100] + ["abc"] + users[100:]) + "\n")
  rc, _, err = _main(capsys, f"--workdir={workdir}", f"--users-file={path}")
  assert rc == 1 and err.strip() == (f"error: {path}:102: expected a user id of the run's data "
                                     "set (integers), got 'abc'")
  path.write_text("\n".join(users + [str(10**6 + n) for n in range(3000)]) + "\n")
  rc, _, err = _main(capsys, f"--workdir={workdir}", f"--users-file={path}")
  assert rc == 1 and len(err) < 300, err
  assert err.strip() == (f"error: {path}:{len(users) + 1}: unknown user id '1000000': the run's "
                         "data set has no such user (a new user's ratings go to --ratings) (and "
                         f"2999 more problem lines, the next at line {len(users) + 2})")
  path.write_text("\ufeffuser_id\r\n\r\n# me\r\n" + users[3] + "\r\n")
  rc, out, err = _main(capsys, f"--workdir={workdir}", f"--users-file={path}", "--k=2")
  assert rc == 0 and f"Top 2 for user {users[3]}:" in out, err


def test_flag_ids_are_checked(model, workdir, tmp_path, capsys):
  uid = str(model.user_ids[0])
  for args, message in (
      (["--user=1001.5"], "--user=1001.5: expected user ids of the run's data set (integers), "
                          "got 1001.5"),
      ([f"--user={uid}", "--predict=501,99999,88888"],
       "--predict=501,99999,88888: unknown item ids 99999, 88888: the run's data set has no "
       "such item"),
      ([f"--users-file={tmp_path}/u.txt", "--predict=501"],
       "--predict goes with --user or --ratings, not --users-file")):
    rc, _, err = _main(capsys, f"--workdir={workdir}", *args)
    assert rc == 1 and err.strip() == f"error: {message}"


def test_output_is_never_overwritten_without_asking(model, workdir, tmp_path, capsys):
  uid = str(model.user_ids[0])
  out = tmp_path / "recs.csv"
  out.write_text("my own notes\n")
  rc, _, err = _main(capsys, f"--workdir={workdir}", f"--user={uid}", f"--output={out}")
  assert rc == 1 and err.strip() == f"error: {out}: exists; pass --overwrite to replace it"
  assert out.read_text() == "my own notes\n"
  rc, stdout, err = _main(capsys, f"--workdir={workdir}", f"--user={uid}", f"--output={out}",
                          "--overwrite")
  assert rc == 0, err
  assert out.read_text().startswith("user_id,rank,item_id")
  assert sorted(p.name for p in tmp_path.iterdir()) == ["recs.csv"]
