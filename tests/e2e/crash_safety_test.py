"""Killed, interrupted or diverging runs lose nothing and finish with the same results."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from tests import conftest, synthetic

ARGS = ("--config.train.num_epochs=4", "--config.train.batch_size=16",
        "--config.eval.batch_size=32", "--config.model.dropout=0.3",
        "--config.train.refeed_steps=1", "--config.data.name=csv")
COMPARED = ("test/rmse", "test/mae", "valid/rmse", "best_epoch", "best_step",
            "test/ndcg@10", "test/recall@10")


def _cmd(workdir, data, *extra):
  return [sys.executable, "-m", "autorec_jax.main", "--config=configs/movielens_1m.py:tiny",
          f"--workdir={workdir}", f"--config.data.path={data}", *ARGS, *extra]


def _run(workdir, data, *extra, fault=None):
  env = {**os.environ, "JAX_PLATFORMS": "cpu", "JAX_NUM_CPU_DEVICES": "1"}
  env.pop("AUTOREC_FAULT", None)
  if fault:
    env["AUTOREC_FAULT"] = fault
  return subprocess.run(_cmd(workdir, data, *extra), cwd=conftest.REPO, env=env,
                        capture_output=True, text=True, timeout=300)


def _results(workdir):
  r = json.loads((workdir / "results.json").read_text())
  return {k: r[k] for k in COMPARED}


def _epochs(workdir):
  return [json.loads(l)["epoch"] for l in (workdir / "metrics.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
  tmp = tmp_path_factory.mktemp("ref")
  data = synthetic.write_ratings_csv(tmp / "r.csv")
  out = _run(tmp / "run", data)
  assert out.returncode == 0, out.stderr[-3000:]
  return data, _results(tmp / "run"), (tmp / "run" / "metrics.jsonl").read_text()


# The tiny synthetic set has 3 train batches per epoch (48 item rows, batch 16).
@pytest.mark.parametrize("fault", ["train_step:9", "checkpoint_save:2", "eval:3"])
def test_sigkill_at_a_fault_point_then_resume_gives_identical_results(reference, tmp_path,
                                                                      fault):
  data, expected, expected_metrics = reference
  killed = _run(tmp_path / "run", data, fault=fault)
  assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
  assert not (tmp_path / "run" / "results.json").exists()
  resumed = _run(tmp_path / "run", data)
  assert resumed.returncode == 0, resumed.stderr[-3000:]
  assert _results(tmp_path / "run") == pytest.approx(expected, rel=1e-6)
  assert _epochs(tmp_path / "run") == [1, 2, 3, 4]
  train_losses = lambda text: [json.loads(l)["train/loss"] for l in text.splitlines()]
  assert train_losses((tmp_path / "run" / "metrics.jsonl").read_text()) == pytest.approx(
      train_losses(expected_metrics), rel=1e-6)


def test_mid_epoch_checkpoints_resume_exactly(reference, tmp_path):
  data, expected, _ = reference
  # Step 8 (epoch 3, batch 2) is saved mid-epoch (every 4 steps); step 10 is killed.
  killed = _run(tmp_path / "run", data, "--config.ckpt.every_steps=4", fault="train_step:10")
  assert killed.returncode == -signal.SIGKILL
  resumed = _run(tmp_path / "run", data, "--config.ckpt.every_steps=4")
  # The console says where the run resumed; the results stay the last line.
  assert "resumed from step " in resumed.stdout.splitlines()[0]
  assert resumed.stdout.splitlines()[-1].startswith("test RMSE ")
  assert resumed.returncode == 0, resumed.stderr[-3000:]
  assert _results(tmp_path / "run") == pytest.approx(expected, rel=1e-6)


def test_sigterm_saves_a_checkpoint_and_exits_cleanly(reference, tmp_path):
  data, expected, _ = reference
  env = {**os.environ, "JAX_PLATFORMS": "cpu", "JAX_NUM_CPU_DEVICES": "1"}
  args = ("--config.train.num_epochs=40", "--config.train.patience=0")
  proc = subprocess.Popen(_cmd(tmp_path / "run", data, *args), cwd=conftest.REPO, env=env,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
  metrics = tmp_path / "run" / "metrics.jsonl"
  deadline = time.time() + 240
  while time.time() < deadline and proc.poll() is None:
    if metrics.exists() and metrics.read_text().count("\n") >= 2:
      break
    time.sleep(0.05)
  proc.send_signal(signal.SIGTERM)
  _, err = proc.communicate(timeout=120)
  assert proc.returncode == 128 + signal.SIGTERM, err[-2000:]
  assert "interrupted: stopped by SIGTERM" in err and "Traceback" not in err
  assert (tmp_path / "run" / "checkpoints").exists()
  done = _run(tmp_path / "run", data, *args)
  assert done.returncode == 0, done.stderr[-3000:]
  assert _epochs(tmp_path / "run") == list(range(1, 41))


def test_a_nan_loss_stops_with_a_message_and_the_best_checkpoint_restorable(reference,
                                                                            tmp_path):
  from autorec_jax.serving import predict
  data, _, _ = reference
  # Two sane epochs, then an absurd learning rate from epoch 3 on (multistep x1e30).
  args = ("--config.optim.schedule=multistep", "--config.optim.decay_epochs=(2,)",
          "--config.optim.decay_rate=1e30")
  out = _run(tmp_path / "run", data, *args)
  assert out.returncode == 1
  assert "train/loss became" in out.stderr and "epoch 3" in out.stderr
  assert "learning rate" in out.stderr and "Traceback" not in out.stderr
  predictor = predict.Predictor(str(tmp_path / "run"))
  assert predictor.epoch <= 2
  test = predictor.part("test")
  m = predict.metrics(predictor.predict(test.user, test.item), test.rating)
  assert m["rmse"] < 2.0


def test_rollback_goes_on_with_a_lower_learning_rate(reference, tmp_path):
  data, _, _ = reference
  args = ("--config.optim.schedule=multistep", "--config.optim.decay_epochs=(2,)",
          "--config.optim.decay_rate=1e30", "--config.train.on_nan=rollback",
          "--config.train.rollback_lr_factor=1e-30", "--config.train.max_rollbacks=1")
  out = _run(tmp_path / "run", data, *args)
  assert out.returncode == 0, out.stderr[-3000:]
  rows = [json.loads(l) for l in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
  assert any(r.get("train/rollback_lr_scale") == pytest.approx(1e-30) for r in rows)
  assert json.loads((tmp_path / "run" / "results.json").read_text())["test/rmse"] < 2.0
