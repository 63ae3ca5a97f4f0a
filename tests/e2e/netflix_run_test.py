"""The DeepRec Netflix pipeline end to end on a small synthetic tree."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from autorec_jax.data import netflix
from tests import conftest

sys.path.insert(0, str(conftest.REPO / "experiments"))
import netflix_synthetic  # noqa: E402  pylint: disable=wrong-import-position


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
  tmp = tmp_path_factory.mktemp("nf")
  source, _ = netflix_synthetic.write_tree(tmp / "raw", 60_000, num_movies=80,
                                           num_customers=3000, seed=1)
  netflix.convert(source, str(tmp / "converted"), seed=0, splits=("3m",))
  return tmp / "converted"


def test_netflix_3m_tiny_trains_end_to_end_and_writes_qualifying_predictions(converted,
                                                                            tmp_path):
  env = {**os.environ, "JAX_PLATFORMS": "cpu", "JAX_NUM_CPU_DEVICES": "1"}
  run = tmp_path / "run"
  out = subprocess.run(
      [sys.executable, "-m", "autorec_jax.main", "--config=configs/netflix_3m.py:tiny",
       f"--workdir={run}", f"--config.data.path={converted}"],
      cwd=conftest.REPO, env=env, capture_output=True, text=True, timeout=300)
  assert out.returncode == 0, out.stderr[-3000:]
  results = json.loads((run / "results.json").read_text())
  stats = json.loads((converted / "stats.json").read_text())["3m"]
  assert results["test/count"] == stats["test"]["ratings"]
  assert results["split"]["valid"]["ratings"] == stats["valid"]["ratings"]
  assert results["split"]["train"]["ratings"] == stats["train"]["ratings"]
  assert 0.5 < results["test/rmse"] < 2.0

  ratings, part = netflix.load_converted(str(converted / "3m"))
  test = np.flatnonzero(part == 2)[:5]
  lines = []
  for movie in sorted(set(ratings.item_ids[ratings.item[test]])):
    lines.append(f"{movie}:")
    lines += [f"{ratings.user_ids[ratings.user[t]]},2005-12-15" for t in test
              if ratings.item_ids[ratings.item[t]] == movie]
  lines += ["99999:", "7,2005-12-01"]  # a movie and a customer never seen
  (tmp_path / "qualifying.txt").write_text("\n".join(lines) + "\n")
  pred = subprocess.run(
      [sys.executable, "-m", "autorec_jax.serving.predict", f"--workdir={run}",
       f"--qualifying={tmp_path / 'qualifying.txt'}", f"--output={tmp_path / 'pred.txt'}"],
      cwd=conftest.REPO, env=env, capture_output=True, text=True, timeout=300)
  assert pred.returncode == 0, pred.stderr[-3000:]
  written = (tmp_path / "pred.txt").read_text().splitlines()
  assert [l for l in written if l.endswith(":")] == [l for l in lines if l.endswith(":")]
  values = [float(l) for l in written if not l.endswith(":")]
  assert len(values) == 6 and all(1.0 <= v <= 5.0 for v in values)
