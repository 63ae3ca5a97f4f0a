"""A trained run stands alone: serving reads only its workdir; changed data is refused."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import autorec_jax
from autorec_jax.artifacts import snapshot
from autorec_jax.data.errors import DataError
from autorec_jax.training import loop
from tests import conftest, synthetic, trained_runs


@pytest.fixture(scope="module")
def moved_run(tmp_path_factory):
  """A run trained on a csv that was then moved away, and that csv's new path."""
  root = tmp_path_factory.mktemp("self_contained")
  (root / "data").mkdir()
  data = synthetic.write_ratings_csv(root / "data" / "ratings.csv")
  cfg = trained_runs.config(data, "user", epochs=2)
  loop.train_and_evaluate(cfg, str(root / "run"))
  moved = root / "elsewhere"
  shutil.move(str(root / "data"), str(moved))
  return root / "run", moved / "ratings.csv", cfg


def test_serving_works_from_the_workdir_alone(moved_run, tmp_path):
  workdir, _, _ = moved_run
  model = autorec_jax.load(str(workdir))
  users, items = model.user_ids[:3], model.item_ids[:3]
  pred = model.predict(users, items)
  assert pred.shape == (3,) and np.all(np.isfinite(pred))
  lo, hi = model.rating_scale
  assert np.all((pred >= lo) & (pred <= hi))
  recs = model.recommend(users[0], k=5)
  assert len(recs) == 5
  rated = model.known_items("all")[model.user_index([users[0]])[0]].indices
  assert not set(model.item_index([r.item_id for r in recs])) & set(rated)
  new = model.fold_in({items[0]: hi, items[1]: lo})
  assert len(new.recommend(3)) == 3
  path = model.export(str(tmp_path / "export"))
  assert os.path.exists(path)
  # The command-line tools too, with no data directory to fall back on.
  env = {**os.environ, "AUTOREC_DATA_DIR": str(tmp_path / "no_data_here")}
  for args in (["-m", "autorec_jax.serving.predict", f"--workdir={workdir}"],
               ["-m", "autorec_jax.serving.recommend", f"--workdir={workdir}",
                f"--user={users[0]}", "--k=3"]):
    proc = subprocess.run([sys.executable, *args], cwd=conftest.REPO, env=env,
                          capture_output=True, text=True, check=False, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]


def test_the_workdir_keeps_the_id_maps_split_and_scale(moved_run):
  workdir, _, _ = moved_run
  snap = snapshot.load(str(workdir))
  results = json.loads((workdir / "results.json").read_text())
  assert snap.data.test.num_ratings == results["test/count"]
  assert snap.data.loaded.ratings.num_users == results["num_users"]
  assert snap.pre is not None and snap.pre.half == 2.0  # scaled 1..5 -> [-1, 1]
  files = json.loads((workdir / snapshot.FINGERPRINT_FILE).read_text())["files"]
  assert len(files) == 1 and files[0]["path"].endswith("ratings.csv")
  assert len(files[0]["sha256"]) == 64


def test_a_user_id_edited_in_the_data_does_not_change_what_is_served(moved_run):
  workdir, moved_csv, _ = moved_run
  before = autorec_jax.load(str(workdir))
  user = before.user_ids[0]
  expected = before.recommend(user, k=5)
  lines = moved_csv.read_text().splitlines()
  header, body = lines[0], lines[1:]
  edited = [l.replace(f"{user},", "999999,", 1) if l.startswith(f"{user},") else l
            for l in body]
  moved_csv.write_text("\n".join([header, *edited]) + "\n")
  after = autorec_jax.load(str(workdir))
  assert after.recommend(user, k=5) == expected


def _resume(workdir, cfg):
  loop.train_and_evaluate(cfg, str(workdir))


def test_resuming_on_changed_data_is_refused_naming_the_file(tmp_path):
  data = synthetic.write_ratings_csv(tmp_path / "ratings.csv")
  cfg = trained_runs.config(data, "item", epochs=1)
  loop.train_and_evaluate(cfg, str(tmp_path / "run"))
  with open(data, "a", encoding="utf-8") as f:
    f.write("7777,7777,3\n")
  cfg.train.num_epochs = 2  # extending a finished run resumes it
  with pytest.raises(DataError, match=r"ratings\.csv: changed since training"):
    loop.train_and_evaluate(cfg, str(tmp_path / "run"))


def test_main_refuses_changed_data_in_one_line_and_overwrite_starts_afresh(tmp_path):
  data = synthetic.write_ratings_csv(tmp_path / "ratings.csv")
  args = [sys.executable, "-m", "autorec_jax.main", "--config=configs/movielens_1m.py:tiny",
          f"--workdir={tmp_path / 'run'}", "--config.data.name=csv",
          f"--config.data.path={data}", "--config.train.num_epochs=1",
          "--config.train.batch_size=16", "--config.eval.batch_size=32"]
  run = lambda *extra: subprocess.run([*args, *extra], cwd=conftest.REPO, capture_output=True,  # pylint: disable=unnecessary-lambda-assignment
                                      text=True, check=False, timeout=300)
  assert run().returncode == 0
  with open(data, "a", encoding="utf-8") as f:
    f.write("7777,7777,3\n")
  refused = run()
  assert refused.returncode != 0
  assert refused.stderr.strip().splitlines()[-1].startswith(f"error: {data}: changed since")
  assert "Traceback" not in refused.stderr
  again = run("--overwrite")
  assert again.returncode == 0, again.stderr[-2000:]


ABSL_APP = textwrap.dedent("""
    from absl import app, flags
    flags.DEFINE_string("workdir", None, "the application's own --workdir")
    flags.DEFINE_string("checkpoint", None, "the application's own --checkpoint")
    flags.DEFINE_integer("k", 3, "the application's own --k")
    import autorec_jax
    from autorec_jax.serving import (api, ensemble, export, fold_in, portable, predict,
                                     recommend)

    def main(argv):
      model = autorec_jax.load(flags.FLAGS.workdir)
      print(len(model.recommend(model.user_ids[0], k=flags.FLAGS.k)))

    app.run(main)
""")


def test_an_absl_application_with_its_own_flags_imports_serving(moved_run, tmp_path):
  workdir, _, _ = moved_run
  script = tmp_path / "app.py"
  script.write_text(ABSL_APP)
  proc = subprocess.run([sys.executable, str(script), f"--workdir={workdir}", "--k=4"],
                        cwd=conftest.REPO, capture_output=True, text=True, check=False,
                        timeout=300, env={**os.environ, "PYTHONPATH": str(conftest.REPO)})
  assert proc.returncode == 0, proc.stderr[-3000:]
  assert proc.stdout.strip() == "4"
