import subprocess
import sys

import numpy as np
import pytest

from autorec_jax.serving import predict
from autorec_jax.training import loop as train
from tests import conftest, synthetic
from tests.training.train_test import _tiny_config


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
  tmp = tmp_path_factory.mktemp("run")
  data = synthetic.write_ratings_csv(tmp / "r.csv")
  cfg = _tiny_config(data)
  results = train.train_and_evaluate(cfg, str(tmp / "run"))
  return tmp / "run", results


def test_predictor_reproduces_the_runs_test_metrics(trained_run):
  workdir, results = trained_run
  predictor = predict.Predictor(str(workdir))
  assert predictor.epoch == results["best_epoch"]
  test = predictor.part("test")
  m = predict.metrics(predictor.predict(test.user, test.item), test.rating)
  assert m["count"] == results["test/count"]
  assert m["rmse"] == pytest.approx(results["test/rmse"], rel=1e-5)
  assert m["mae"] == pytest.approx(results["test/mae"], rel=1e-5)


def test_latest_and_numbered_checkpoints(trained_run):
  workdir, _ = trained_run
  latest = predict.Predictor(str(workdir), "latest")
  assert latest.epoch == 3
  assert predict.Predictor(str(workdir), str(latest.step)).epoch == 3
  with pytest.raises(FileNotFoundError, match="no checkpoint"):
    predict.Predictor(str(workdir), "99")


def test_cli_writes_deeprec_lines_with_original_ids(trained_run, tmp_path):
  workdir, results = trained_run
  out = tmp_path / "preds.txt"
  proc = subprocess.run([sys.executable, "-m", "autorec_jax.serving.predict", f"--workdir={workdir}",
                         "--split=test", f"--output={out}"], cwd=conftest.REPO,
                        capture_output=True, text=True, timeout=120)
  assert proc.returncode == 0, proc.stderr[-2000:]
  assert f"test RMSE {results['test/rmse']:.4f}" in proc.stdout
  lines = [l.split() for l in out.read_text().splitlines()]
  assert len(lines) == results["test/count"]
  users = np.array([int(l[0]) for l in lines])
  items = np.array([int(l[1]) for l in lines])
  assert users.min() >= 1001 and items.min() >= 501  # original ids, not indices
  pred, truth = np.array([float(l[2]) for l in lines]), np.array([float(l[3]) for l in lines])
  assert np.sqrt(np.mean((pred - truth) ** 2)) == pytest.approx(results["test/rmse"], abs=1e-3)


def test_cli_on_a_missing_workdir_is_one_line(tmp_path):
  proc = subprocess.run([sys.executable, "-m", "autorec_jax.serving.predict",
                         f"--workdir={tmp_path / 'nope'}"], cwd=conftest.REPO,
                        capture_output=True, text=True, timeout=120)
  assert proc.returncode == 1
  assert "is not a run's workdir" in proc.stderr and "Traceback" not in proc.stderr


def test_cli_prints_error_by_user_activity(trained_run):
  workdir, _ = trained_run
  proc = subprocess.run([sys.executable, "-m", "autorec_jax.serving.predict", f"--workdir={workdir}",
                         "--by=item"], cwd=conftest.REPO, capture_output=True, text=True,
                        timeout=120)
  assert proc.returncode == 0, proc.stderr[-2000:]
  assert "by item activity" in proc.stdout and "200+" in proc.stdout


def test_cli_refuses_to_overwrite_an_output(trained_run, tmp_path):
  workdir, _ = trained_run
  out = tmp_path / "preds.txt"
  out.write_text("my predictions\n")
  cmd = [sys.executable, "-m", "autorec_jax.serving.predict", f"--workdir={workdir}",
         f"--output={out}"]
  proc = subprocess.run(cmd, cwd=conftest.REPO, capture_output=True, text=True, timeout=120)
  assert proc.returncode == 1
  assert proc.stderr.strip() == f"error: {out}: exists; pass --overwrite to replace it"
  assert out.read_text() == "my predictions\n"
  proc = subprocess.run(cmd + ["--overwrite"], cwd=conftest.REPO, capture_output=True,
                        text=True, timeout=120)
  assert proc.returncode == 0, proc.stderr[-2000:]
  assert out.read_text() != "my predictions\n" and len(out.read_text().splitlines()) > 10
  assert sorted(p.name for p in tmp_path.iterdir()) == ["preds.txt"]


def test_checkpoint_errors(trained_run, tmp_path):
  workdir, _ = trained_run
  steps = predict.checkpoint.steps(str(workdir), keep_best=True)[0]
  for bad in (True, 1.0, -3, "-3", "last", "٣"):
    with pytest.raises(ValueError, match="checkpoint must be 'best', 'latest' or a step"):
      predict.Predictor(str(workdir), bad)
  with pytest.raises(FileNotFoundError, match=rf"no checkpoint 99 under {workdir}/checkpoints; "
                                              rf"it holds steps? {steps[0]}"):
    predict.Predictor(str(workdir), 99)
  # A workdir without checkpoints is told so, and serving creates nothing in it.
  bare = tmp_path / "bare"
  bare.mkdir()
  for name in ("config.json", "data.npz"):
    (bare / name).write_bytes((workdir / name).read_bytes())
  with pytest.raises(FileNotFoundError, match=rf"{bare}/checkpoints: no checkpoint to serve "
                                              r"\(no such folder\)"):
    predict.Predictor(str(bare))
  assert sorted(p.name for p in bare.iterdir()) == ["config.json", "data.npz"]


def test_predict_ids_refuses_values_that_are_not_ids(trained_run):
  workdir, _ = trained_run
  p = predict.Predictor(str(workdir))
  users, items = p.data.loaded.ratings.user_ids, p.data.loaded.ratings.item_ids
  np.testing.assert_array_equal(p.predict_ids(users[:2].astype(float), items[:2]),
                                p.predict_ids(users[:2], items[:2]))
  with pytest.raises(ValueError, match=r"user id\(s\) \[1001\.5\] are not ids"):
    p.predict_ids(np.array([1001.5]), items[:1])
