"""experiments/wall_time.py: the sample it draws and one timed run of a tiny config."""

import gzip
import json
import os

import pytest

from experiments import wall_time
from tests import synthetic


def test_the_sample_is_seeded_uniform_and_keeps_the_header(tmp_path, monkeypatch):
  source = tmp_path / "movielens-1m" / "ratings_no_timestamps.csv.gz"
  source.parent.mkdir()
  rows = [f"{u},{u % 7},{1 + u % 5}" for u in range(200)]
  with gzip.open(source, "wt") as f:
    f.write("user_id,movie_id,rating\n" + "\n".join(rows) + "\n")
  monkeypatch.setenv("AUTOREC_DATA_DIR", str(tmp_path))
  first = wall_time.write_sample(str(tmp_path / "a.csv"), 50)
  again = wall_time.write_sample(str(tmp_path / "b.csv"), 50)
  lines = open(first).read().splitlines()
  assert lines[0] == "user_id,movie_id,rating" and len(lines) == 51
  assert len(set(lines[1:])) == 50 and set(lines[1:]) <= set(rows)
  assert open(again).read() == open(first).read()


def test_one_run_reads_the_commands_own_seconds(tmp_path):
  data = synthetic.write_ratings_csv(tmp_path / "r.csv")
  workdir = str(tmp_path / "run")
  r = wall_time.one_run(["--config=configs/movielens_1m.py:tiny", "--config.data.name=csv",
                         f"--config.data.path={data}"], workdir)
  with open(os.path.join(workdir, "results.json"), encoding="utf-8") as f:
    results = json.load(f)
  assert r["train"] == results["train_seconds"] and r["compile"] == results["compile_seconds"]
  assert r["wall"] > r["train"] + r["compile"] and r["ratio"] == pytest.approx(
      r["wall"] / (r["train"] + r["compile"]))
