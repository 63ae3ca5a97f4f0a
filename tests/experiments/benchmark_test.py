"""experiments/benchmark.py: its FLOP counts and an end-to-end run on a tiny config."""

import json
import os
import subprocess
import sys

import pytest

from experiments import benchmark
from tests import conftest, synthetic

REPO = conftest.REPO


def test_flop_counts_are_the_issues_numbers_for_deeprec_on_ml1m():
  # ML-1M user rows: 6,040 users x 3,706 movies, ~149 train ratings per user.
  hidden, rows, entries = (512, 512, 1024), 6040, 6040 * 149
  no_refeed = benchmark.epoch_flops(3706, hidden, rows=rows, entries=entries,
                                    refeed_steps=0)
  refeed = benchmark.epoch_flops(3706, hidden, rows=rows, entries=entries, refeed_steps=1)
  assert no_refeed["dense"] / 1e9 == pytest.approx(171, abs=1.5)
  assert no_refeed["sparse_aware"] / 1e9 == pytest.approx(61, abs=1.5)
  assert refeed["dense"] / 1e9 == pytest.approx(341, abs=3)
  assert refeed["sparse_aware"] / 1e9 == pytest.approx(254, abs=3)


def test_flop_count_of_a_one_layer_model_by_hand():
  # n=10, one hidden layer of 4, 3 rows, 5 entries: layers 10x4 and 4x10 (80 FLOPs each).
  f = benchmark.epoch_flops(10, (4,), rows=3, entries=5, refeed_steps=0)
  assert f["dense"] == 3 * (3 * 160 - 80)
  assert f["sparse_aware"] == 10 * 5 * 4  # no middle layers
  assert benchmark.layer_shapes(10, (4, 2)) == [(10, 4), (4, 2), (2, 4), (4, 10)]
  assert benchmark.eval_flops(10, (4,), rows=3) == 3 * 160


def test_benchmark_runs_end_to_end_and_reports_every_number(tmp_path):
  data = synthetic.write_ratings_csv(tmp_path / "r.csv", num_users=300, num_items=60)
  out_json = tmp_path / "bench.json"
  cmd = [sys.executable, "experiments/benchmark.py", "--config=configs/movielens_1m.py:tiny",
         "--config.data.name=csv", f"--config.data.path={data}",
         "--config.model.orientation=user", "--epochs=2", "--refeed=0,1", "--repeats=2",
         f"--json={out_json}"]
  env = {**os.environ, "JAX_PLATFORMS": "cpu"}
  out = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
  assert out.returncode == 0, out.stderr[-3000:]
  result = json.loads(out_json.read_text())
  assert [t["refeed_steps"] for t in result["train"]] == [0, 1]
  for t in result["train"]:
    assert t["epoch_s"] > 0 and t["eval_s"] > 0
    assert t["flops"]["dense"] > t["flops"]["sparse_aware"] > 0
  assert result["peak"]["float32"]["best"] > 0
  assert result["batcher"]["batches_per_s"] > 0
  k = result["sparse_kernels"]
  assert k["entries"] > 0 and k["dense_s"] > 0 and k["gather_segment_sum_s"] > 0
  from autorec_jax.training import fast_path  # pylint: disable=import-outside-toplevel
  if fast_path.sparse_ops_available()[0]:
    assert k["native_s"] > 0 and k["output_native_s"] > 0 and k["output_dense_s"] > 0
    assert "output layer fwd+grads" in out.stdout
  else:
    assert k["native_s"] is None and "output_native_s" not in k
  assert result["step"]["dense_refeed0_s"] > 0 and result["step"]["dense_refeed1_s"] > 0
  for needle in ("one train step on one batch", "peak matmul float32", "batcher alone",
                 "train refeed=0",
                 "train refeed=1", "eval:", "first layer fwd+wgrad"):
    assert needle in out.stdout


def test_steps_only_skips_the_epoch_runs(tmp_path):
  data = synthetic.write_ratings_csv(tmp_path / "r.csv", num_users=100, num_items=40)
  out_json = tmp_path / "bench.json"
  cmd = [sys.executable, "experiments/benchmark.py", "--config=configs/movielens_1m.py:tiny",
         "--config.data.name=csv", f"--config.data.path={data}", "--steps_only",
         "--repeats=2", f"--json={out_json}"]
  env = {**os.environ, "JAX_PLATFORMS": "cpu"}
  out = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
  assert out.returncode == 0, out.stderr[-3000:]
  result = json.loads(out_json.read_text())
  assert result["train"] == [] and result["step"]["dense_refeed0_s"] > 0
  assert "train refeed" not in out.stdout and "one train step" in out.stdout
