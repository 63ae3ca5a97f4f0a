"""Two local processes on JAX's distributed runtime train like one process."""

import json
import os
import socket
import subprocess
import sys

import pytest

from tests import conftest, synthetic

ARGS = ("--config.train.num_epochs=2", "--config.train.batch_size=16",
        "--config.eval.batch_size=32", "--config.train.refeed_steps=1",
        "--config.model.dropout=0.5", "--config.data.name=csv")


def _free_port() -> int:
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


def _command(workdir, data, *extra):
  return [sys.executable, "-m", "autorec_jax.main", "--config=configs/movielens_1m.py:tiny",
          f"--workdir={workdir}", f"--config.data.path={data}", *ARGS, *extra]


def _env(devices: int):
  return {**os.environ, "JAX_NUM_CPU_DEVICES": str(devices), "JAX_PLATFORMS": "cpu"}


@pytest.mark.slow
def test_two_processes_match_one_process_with_the_same_devices(tmp_path):
  data = synthetic.write_ratings_csv(tmp_path / "r.csv")
  single = subprocess.run(_command(tmp_path / "single", data), cwd=conftest.REPO,
                          env=_env(2), capture_output=True, text=True, timeout=300)
  assert single.returncode == 0, single.stderr[-3000:]

  port = _free_port()
  multi = tmp_path / "multi"
  procs = [subprocess.Popen(
      _command(multi, data, f"--coordinator_address=127.0.0.1:{port}",
               "--num_processes=2", f"--process_id={i}"),
      cwd=conftest.REPO, env=_env(1), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
      text=True) for i in range(2)]
  outs = [p.communicate(timeout=300) for p in procs]
  for p, (_, err) in zip(procs, outs):
    assert p.returncode == 0, err[-3000:]
  assert "test RMSE" in outs[0][0] and "test RMSE" not in outs[1][0]

  a = json.loads((tmp_path / "single" / "results.json").read_text())
  b = json.loads((multi / "results.json").read_text())
  assert b["test/rmse"] == pytest.approx(a["test/rmse"], rel=1e-5)
  assert b["valid/rmse"] == pytest.approx(a["valid/rmse"], rel=1e-5)
  assert b["best_epoch"] == a["best_epoch"]
  rows_a = [json.loads(l) for l in (tmp_path / "single" / "metrics.jsonl").read_text().splitlines()]
  rows_b = [json.loads(l) for l in (multi / "metrics.jsonl").read_text().splitlines()]
  assert [r["train/loss"] for r in rows_b] == pytest.approx([r["train/loss"] for r in rows_a],
                                                            rel=1e-5)
