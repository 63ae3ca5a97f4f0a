"""`python -m autorec_jax.main` on tiny or degenerate data and out-of-domain values: one
`error:` line and exit 1 before any work, or a finished run whose results.json and
metrics.jsonl are strict JSON (`null` where a metric does not exist) and whose last
line claims no number that is not there."""

import json
import os
import subprocess
import sys

import pytest

from tests import conftest, synthetic

TINY = "--config=configs/movielens_1m.py:tiny"


def _strict(text: str):
  def refuse(name):
    raise ValueError(f"not strict JSON: {name}")
  return json.loads(text, parse_constant=refuse)


def _data(root):
  """The data files of the runs below, by name."""
  root.mkdir(exist_ok=True)
  files = {"r": synthetic.write_ratings_csv(root / "r.csv")}
  for n in (1, 5):
    files[f"items{n}"] = synthetic.write_ratings_csv(root / f"items{n}.csv", num_items=n)
  files["two"] = root / "two.csv"
  files["two"].write_text("user,item,rating\n1,1,4\n2,2,3\n")
  return files


# name -> (data file, overrides, expected exit code, start of the error line or None)
ERRORS = {
    "train_emptied_by_the_fractions": (
        "r", ["--config.data.test_fraction=0.99", "--config.data.valid_fraction=0.99"], 1,
        "error: data.test_fraction=0.99 and data.valid_fraction=0.99 leave no ratings to "
        "train on ("),
    "negative_clip_norm": ("r", ["--config.optim.grad_clip_norm=-1"], 1,
                           "error: optim.grad_clip_norm=-1.0 must be > 0 (or None: no "
                           "clipping)"),
    "seed_beyond_64_bits": ("r", [f"--config.seed={2**70}"], 1,
                            f"error: seed={2**70} must be in [0, 4294967295]"),
    "negative_data_seed": ("r", ["--config.data.seed=-1"], 1,
                           "error: data.seed=-1 must be in [0, 4294967295]"),
    "ranking_cutoff_zero": ("r", ["--config.eval.ranking_ks=(10,0)"], 1,
                            "error: eval.ranking_ks=(10, 0) must be a tuple of ints >= 1"),
    "folds_and_a_test_file": ("r", ["--config.data.num_folds=5", "--config.data.test_path=T"],
                              1, "error: data.num_folds=5 and data.test_path='T' both "
                                 "choose the test part; set only one"),
}
KINDS = {"item": ["--config.model.orientation=item"],
         "user": ["--config.model.orientation=user"],
         "svd": ["--config.model.kind=svd"], "als": ["--config.model.kind=als"]}
RUNS = {"two_ratings": ("two", [])}
for _n in (1, 5):
  for _kind, _args in KINDS.items():
    RUNS[f"items{_n}_{_kind}"] = (f"items{_n}", [*_args, "--config.eval.ranking_ks=(1,1000)"])


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
  """Starts every case at once (mostly interpreter and JAX start-up), then waits."""
  root = tmp_path_factory.mktemp("degenerate")
  files = _data(root / "data")
  env = {**os.environ, "JAX_PLATFORMS": "cpu", "JAX_NUM_CPU_DEVICES": "1"}
  procs = {}
  for name, (data, args, *_) in {**ERRORS, **RUNS}.items():
    cmd = [sys.executable, "-m", "autorec_jax.main", TINY, f"--workdir={root / name}",
           "--config.data.name=csv", f"--config.data.path={files[data]}", *args]
    procs[name] = subprocess.Popen(cmd, cwd=conftest.REPO, env=env, text=True,
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE)
  out = {}
  for name, proc in procs.items():
    stdout, stderr = proc.communicate(timeout=600)
    out[name] = (proc.returncode, stdout, stderr, root / name)
  return out


@pytest.mark.parametrize("name", ERRORS)
def test_refused_before_any_work_in_one_line(name, runs):
  _, _, code, expected = ERRORS[name]
  returncode, stdout, stderr, workdir = runs[name]
  assert returncode == code, stderr[-2000:]
  assert "Traceback" not in stderr
  errors = [line for line in stderr.splitlines() if line.startswith("error: ")]
  assert len(errors) == 1 and errors[0].startswith(expected), stderr[-2000:]
  assert "test RMSE" not in stdout
  assert not (workdir / "results.json").exists()
  assert not (workdir / "checkpoints").exists()


@pytest.mark.parametrize("name", RUNS)
def test_tiny_data_sets_finish_with_strict_json_and_sane_metrics(name, runs):
  returncode, stdout, stderr, workdir = runs[name]
  assert returncode == 0, stderr[-3000:]
  assert "Traceback" not in stderr
  results = _strict((workdir / "results.json").read_text())
  rows = [_strict(line) for line in (workdir / "metrics.jsonl").read_text().splitlines()]
  assert rows and all(r["train/loss"] is not None for r in rows if "train/loss" in r)
  last = stdout.strip().splitlines()[-1]
  if results["test/count"] == 0:
    assert results["test/rmse"] is None and results["test/mae"] is None
    assert last.startswith("test RMSE n/a (empty test part)"), last
  else:
    assert 0 <= results["test/rmse"] <= 4 and f"test RMSE {results['test/rmse']:.4f}" in last
  if results["split"]["valid"]["ratings"] == 0:
    assert results["valid/rmse"] is None and "valid RMSE n/a" in last
  for key, value in results.items():
    if "@" in key and value is not None:  # ranking metrics, k past the number of items
      assert 0.0 <= value <= 1.0, (key, value)
  if name == "two_ratings":  # asked-for ranking metrics of empty parts are null, not absent
    assert results["test/ndcg@10"] is None and results["valid/recall@10"] is None
  if name.startswith("items5_") and name.split("_")[1] in ("item", "user"):
    assert results["test/recall@1000"] == pytest.approx(1.0)  # every item is in the top k
    assert results["test/ndcg@1"] is not None
