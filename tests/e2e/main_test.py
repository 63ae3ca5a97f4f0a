"""End-to-end runs of `python -m autorec_jax.main` in subprocesses."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from tests import conftest, synthetic

REPO = conftest.REPO


def _run_main(workdir, *overrides, devices=1, data=None, wait=True, env_extra=None):
  cmd = [sys.executable, "-m", "autorec_jax.main",
         "--config=configs/movielens_1m.py:tiny", f"--workdir={workdir}", *overrides]
  if data is not None:
    cmd += ["--config.data.name=csv", f"--config.data.path={data}"]
  env = {**os.environ, "JAX_NUM_CPU_DEVICES": str(devices), "JAX_PLATFORMS": "cpu"}
  env.update(env_extra or {})
  if not wait:
    return subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
  return subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)


def _results(workdir):
  return json.loads((workdir / "results.json").read_text())


def test_tiny_end_to_end_prints_test_rmse(tmp_path):
  data = synthetic.write_ratings_csv(tmp_path / "r.csv")
  out = _run_main(tmp_path / "run", data=data)
  assert out.returncode == 0, out.stderr[-3000:]
  assert "test RMSE" in out.stdout
  results = _results(tmp_path / "run")
  config = json.loads((tmp_path / "run" / "config.json").read_text())
  assert config["data"]["path"] == str(data)
  assert f"{results['test/rmse']:.4f}" in out.stdout


def test_same_seed_same_result_and_one_vs_eight_devices(tmp_path):
  data = synthetic.write_ratings_csv(tmp_path / "r.csv")
  runs = {}
  for name, devices in (("a", 1), ("b", 1), ("c", 8)):
    out = _run_main(tmp_path / name, "--config.train.refeed_steps=1",
                    "--config.model.dropout=0.5", data=data, devices=devices)
    assert out.returncode == 0, out.stderr[-3000:]
    runs[name] = _results(tmp_path / name)
  assert runs["a"]["test/rmse"] == runs["b"]["test/rmse"]
  assert runs["a"]["test/rmse"] == pytest.approx(runs["c"]["test/rmse"], rel=1e-5)
  assert runs["a"]["valid/rmse"] == pytest.approx(runs["c"]["valid/rmse"], rel=1e-5)


def test_malformed_line_gives_file_and_line(tmp_path):
  data = synthetic.write_ratings_csv(tmp_path / "r.csv")
  lines = data.read_text().splitlines()
  lines[6] = "1001,oops,4"
  data.write_text("\n".join(lines) + "\n")
  out = _run_main(tmp_path / "run", data=data)
  assert out.returncode != 0
  assert f"{data}:7:" in out.stderr
  assert "Traceback" not in out.stderr


def test_bad_config_value_is_one_clear_line(tmp_path):
  data = synthetic.write_ratings_csv(tmp_path / "r.csv")
  out = _run_main(tmp_path / "run", "--config.model.dropout=1.5", data=data)
  assert out.returncode != 0
  assert "model.dropout=1.5" in out.stderr
  assert "Traceback" not in out.stderr


def test_sigkill_mid_run_then_resume_finishes_with_the_same_results(tmp_path):
  data = synthetic.write_ratings_csv(tmp_path / "r.csv", num_users=600, num_items=200)
  args = ("--config.train.num_epochs=6", "--config.model.hidden=(64,)",
          "--config.train.batch_size=8")
  ref = _run_main(tmp_path / "ref", *args, data=data)
  assert ref.returncode == 0, ref.stderr[-3000:]

  run = tmp_path / "run"
  proc = _run_main(run, *args, data=data, wait=False)
  deadline = time.time() + 240
  metrics = run / "metrics.jsonl"
  while time.time() < deadline and proc.poll() is None:
    if metrics.exists() and len(metrics.read_text().splitlines()) >= 2:
      break
    time.sleep(0.05)
  assert proc.poll() is None, "run finished before it could be killed"
  time.sleep(0.1)  # into the next epoch
  proc.send_signal(signal.SIGKILL)
  proc.wait()
  assert not (run / "results.json").exists()

  out = _run_main(run, *args, data=data)
  assert out.returncode == 0, out.stderr[-3000:]
  resumed, reference = _results(run), _results(tmp_path / "ref")
  assert resumed["test/rmse"] == pytest.approx(reference["test/rmse"], rel=1e-6)
  assert resumed["best_epoch"] == reference["best_epoch"]
  epochs = [json.loads(l)["epoch"] for l in metrics.read_text().splitlines()]
  assert epochs == [1, 2, 3, 4, 5, 6]


def test_real_movielens_1m_short_run(tmp_path):
  conftest.require_data("movielens-1m/ratings_no_timestamps.csv.gz")
  out = _run_main(tmp_path / "run", "--config.train.num_epochs=1",
                  env_extra={"AUTOREC_DATA_DIR": str(conftest.shared_data_dir())})
  assert out.returncode == 0, out.stderr[-3000:]
  results = _results(tmp_path / "run")
  assert results["num_users"] == 6040 and results["num_items"] == 3706
  assert results["test/count"] == pytest.approx(100021, abs=1)
  assert results["test/rmse"] < 1.2


def test_a_model_too_big_for_memory_fails_early_with_an_estimate(tmp_path):
  data = synthetic.write_ratings_csv(tmp_path / "r.csv")
  out = _run_main(tmp_path / "run", "--config.model.hidden=(400000000,)", data=data)
  assert out.returncode == 1
  assert "the model does not fit: about" in out.stderr and "GiB" in out.stderr
  assert "Traceback" not in out.stderr


def test_a_config_file_that_is_not_python_is_one_line(tmp_path):
  config = tmp_path / "broken.py"
  config.write_text("def get_config(:\n")
  cmd = [sys.executable, "-m", "autorec_jax.main", f"--config={config}",
         f"--workdir={tmp_path / 'run'}"]
  out = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=120,
                       env={**os.environ, "JAX_PLATFORMS": "cpu"})
  assert out.returncode == 2
  assert out.stderr == f"error: {config}:1: the config file is not valid Python (invalid syntax)\n"
