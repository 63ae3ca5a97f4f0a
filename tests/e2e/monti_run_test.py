"""`python -m autorec_jax.main` on a rating matrix with split masks (data.name=monti).

A tiny synthetic MATLAB v7.3 file in Monti et al.'s layout trains end to end with its
own test mask as the test part; a file with overlapping masks stops with one `error:`
line. The same batch checks that `--help` says where the config fields are documented.
"""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from tests import conftest
from tests.data.matlab_files import write_v73

TINY = "--config=configs/movielens_1m.py:tiny"


def _monti(num_users=40, num_items=30, seed=0):
  """M (ratings 1..5 at about half the entries), and disjoint train/test masks."""
  rng = np.random.default_rng(seed)
  rated = rng.random((num_users, num_items)) < 0.5
  m = np.where(rated, rng.integers(1, 6, (num_users, num_items)), 0).astype(np.float64)
  test = rated & (rng.random(rated.shape) < 0.2)
  return {"M": m, "Otraining": (rated & ~test).astype(np.float64),
          "Otest": test.astype(np.float64)}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
  """Starts every command at once (mostly interpreter and JAX start-up), then waits."""
  root = tmp_path_factory.mktemp("monti")
  good, overlap = root / "training_test_dataset.mat", root / "overlap.mat"
  variables = _monti()
  write_v73(good, variables)
  bad = dict(variables, Otest=np.maximum(variables["Otest"], variables["Otraining"]))
  write_v73(overlap, bad)
  monti = [TINY, "--config.data.name=monti", "--config.data.download=False"]
  commands = {
      "train": [*monti, f"--config.data.path={good}", f"--workdir={root / 'train'}"],
      "overlap": [*monti, f"--config.data.path={overlap}", f"--workdir={root / 'o'}"],
      "help": ["--help"],
  }
  env = {**os.environ, "JAX_PLATFORMS": "cpu", "JAX_NUM_CPU_DEVICES": "1"}
  procs = {name: subprocess.Popen([sys.executable, "-m", "autorec_jax.main", *args],
                                  cwd=conftest.REPO, env=env, text=True,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE)
           for name, args in commands.items()}
  out = {name: (*proc.communicate(timeout=600), proc.returncode)
         for name, proc in procs.items()}
  return root, variables, out


def test_a_monti_file_trains_with_its_test_mask_as_the_test_part(runs):
  root, variables, out = runs
  stdout, stderr, code = out["train"]
  assert code == 0, stderr[-3000:]
  assert "Traceback" not in stderr
  results = json.loads((root / "train" / "results.json").read_text())
  split = results["split"]
  assert split["test"]["ratings"] == int(variables["Otest"].sum())
  assert split["train"]["ratings"] + split["valid"]["ratings"] == int(
      variables["Otraining"].sum())
  assert split["valid"]["ratings"] > 0  # carved from the training mask
  assert f"test RMSE {results['test/rmse']:.4f}" in stdout.strip().splitlines()[-1]


def test_overlapping_masks_stop_with_one_line(runs):
  root, variables, out = runs
  _, stderr, code = out["overlap"]
  assert code == 1 and "Traceback" not in stderr
  train = variables["Otraining"]  # every training entry is in the bad test mask too
  r, c = np.argwhere(train)[0] + 1
  errors = [line for line in stderr.splitlines() if line.startswith("error: ")]
  assert errors == [f"error: {root / 'overlap.mat'}: variables Otraining and Otest "
                    "overlap: expected disjoint masks (each rating in one part), got "
                    f"row {r}, column {c} (1-based) in both ({int(train.sum())} entries "
                    "in both)"], stderr[-3000:]
  assert not (root / "o" / "results.json").exists()


def test_help_says_where_the_config_fields_are_documented(runs):
  stdout, stderr, _ = runs[2]["help"]  # absl's --help exits with status 1
  text = stdout + stderr
  assert "docs/configs.md" in text and "files in configs/" in text
