"""`python -m autorec_jax.tune` in subprocesses: --help, one-line errors, a tiny study."""

import json
import os
import subprocess
import sys

import pytest

from tests import conftest, synthetic

REPO = conftest.REPO
TINY = ["--config=configs/movielens_1m.py:tiny"]


def _tune(*args, python_prelude=None):
  env = {**os.environ, "JAX_NUM_CPU_DEVICES": "1", "JAX_PLATFORMS": "cpu"}
  env.pop("AUTOREC_DEBUG", None)
  if python_prelude is None:
    cmd = [sys.executable, "-m", "autorec_jax.tune", *args]
  else:  # run the module after some setup, as `python -m` would
    code = (f"{python_prelude}; import runpy, sys; sys.argv = ['tune'] + {list(args)!r}; "
            "runpy.run_module('autorec_jax.tune', run_name='__main__')")
    cmd = [sys.executable, "-c", code]
  return subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)


def test_help_lists_the_flags():
  out = _tune("--help")
  assert out.returncode == 0, out.stderr
  for flag in ("--budget", "--trials", "--workdir", "--config", "--prune", "--overwrite",
               "--seed"):
    assert flag in out.stdout
  assert "python -m autorec_jax.tune" in out.stdout


@pytest.mark.parametrize("args, code, message", [
    (["--budget=10x"], 1, "error: --budget=10x: expected a duration such as 90s, 10m"),
    (["--budget=10"], 1, "give a unit"),
    ([], 1, "error: give --budget (e.g. --budget=10m) or --trials"),
    (["--budget=1m", "--trials=0"], 2, "error:"),
    (["--budget=1m", "--config.model.hiden=(3,)"], 2, "hiden"),
])
def test_bad_input_is_one_line(tmp_path, args, code, message):
  out = _tune(*TINY, f"--workdir={tmp_path / 's'}", *args)
  assert out.returncode == code, out.stderr
  assert message in out.stderr and "Traceback" not in out.stderr
  assert len(out.stderr.strip().splitlines()) <= 2  # the error (and "Pass --help")


def test_missing_optuna_names_the_extra(tmp_path):
  out = _tune(*TINY, f"--workdir={tmp_path / 's'}", "--budget=1m",
              python_prelude="import sys; sys.modules['optuna'] = None")
  assert out.returncode == 1
  assert out.stderr.strip() == (
      "error: the tuner needs Optuna, which is not installed: pip install "
      "'autorec_jax[tune]' (or pip install optuna)")


@pytest.mark.e2e
def test_a_tiny_study_prints_its_table_and_fixes_the_overridden_fields(tmp_path):
  data = synthetic.write_ratings_csv(tmp_path / "r.csv")
  workdir = tmp_path / "study"
  args = [*TINY, f"--workdir={workdir}", "--budget=10m", "--trials=2",
          "--config.data.name=csv", f"--config.data.path={data}",
          "--config.eval.ranking_ks=()", "--config.model.hidden=(16,)"]
  out = _tune(*args)
  assert out.returncode == 0, out.stderr[-3000:]
  assert "| trial | state | valid RMSE | epochs | seconds |" in out.stdout
  assert out.stdout.strip().splitlines()[-1].startswith("best trial ")
  study = json.loads((workdir / "study.json").read_text())
  assert study["fixed"] == ["data.name", "data.path", "eval.ranking_ks", "model.hidden"]
  assert "model.hidden[0]" not in study["params"] and "optim.learning_rate" in study["params"]
  results = json.loads((workdir / "results.json").read_text())
  assert results["budget_seconds"] == 600 and sum(results["trials"].values()) == 2
  other = _tune(*args[:-1], "--config.model.hidden=(8,)")
  assert other.returncode == 1 and "holds a study of another config" in other.stderr
  assert len(other.stderr.strip().splitlines()) == 1
