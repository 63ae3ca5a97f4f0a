"""A tiny study end to end, in process: the table and outputs, a trial trained again
from its config file, resuming, pruning, the budget cut and refused workdirs."""

import csv
import fcntl
import json
import os
import shutil

import optuna
import pytest

from autorec_jax.config.checks import ConfigError
from autorec_jax.training import metrics
from autorec_jax.training import registry as trainer_registry
from autorec_jax.training import workdir as workdir_lib
from autorec_jax.tuning import report, spaces
from autorec_jax.tuning import study as study_lib
from configs import movielens_1m
from tests import synthetic

optuna.logging.set_verbosity(optuna.logging.WARNING)
# Set on the command line in a real run, so left out of the search (the widths and
# orientation too, so trials share shapes and compile less).
FIXED = ["data.name", "data.path", "eval.ranking_ks", "model.hidden", "model.orientation"]


def _config(data):
  cfg = movielens_1m.get_config("tiny")
  with cfg.unlocked():
    cfg.data.name, cfg.data.path, cfg.eval.ranking_ks = "csv", str(data), ()
  return cfg


def _tune(cfg, workdir, lines=None, **settings):
  out = [] if lines is None else lines
  return study_lib.tune(cfg, str(workdir), study_lib.Settings(**settings), fixed=FIXED,
                        log=out.append)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
  return synthetic.write_ratings_csv(tmp_path_factory.mktemp("data") / "r.csv")


@pytest.fixture(scope="module")
def three_trials(data, tmp_path_factory):
  """A study of three trials, searched once for the tests below (which copy it to
  change it)."""
  workdir = tmp_path_factory.mktemp("study")
  lines = []
  results = _tune(_config(data), workdir, lines, max_trials=3)
  return workdir, results, lines


def _table(workdir):
  with open(workdir / "trials.csv", encoding="utf-8") as f:
    return list(csv.DictReader(f))


def _assert_unlocked(path):
  with open(os.path.join(path, workdir_lib.LOCK_FILE), "a+", encoding="utf-8") as f:
    fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)  # raises if a lock is still held
    fcntl.flock(f, fcntl.LOCK_UN)


def test_outputs_table_and_winner(three_trials):
  workdir, results, lines = three_trials
  for name in (*report.OUTPUT_FILES, study_lib.STUDY_FILE, study_lib.STORAGE_FILE):
    assert (workdir / name).exists(), name
  table = _table(workdir)
  assert [r["trial"] for r in table] == ["0", "1", "2"]
  assert {r["state"] for r in table} == {"complete"}
  assert set(table[0]) >= {"valid_rmse", "epochs", "seconds", "optim.learning_rate",
                           "model.dropout", "train.num_epochs", "workdir"}
  assert not {"model.hidden[0]", "model.orientation"} & set(table[0])  # fixed
  # trial 0 is the config as given
  assert table[0]["optim.learning_rate"] == "0.02" and table[0]["train.num_epochs"] == "2"
  assert results["first_trial_is_config_as_given"]
  best = min(table, key=lambda r: float(r["valid_rmse"]))
  assert results["best_trial"] == int(best["trial"])
  assert results["valid/rmse"] == pytest.approx(float(best["valid_rmse"]))
  run = json.loads((workdir / best["workdir"] / "results.json").read_text())
  assert results["test/rmse"] == run["test/rmse"] and results["valid/rmse"] == run["valid/rmse"]
  assert json.loads((workdir / "results.json").read_text())["best_trial"] == results["best_trial"]
  assert (workdir / "best_config.json").read_bytes() == (
      workdir / best["workdir"] / "config.json").read_bytes()
  md = (workdir / "trials.md").read_text()
  assert "| trial | state | valid RMSE | epochs | seconds |" in md and "(best)" in md
  assert (workdir / "trials.png").read_bytes()[:4] == b"\x89PNG"
  assert any("| trial | state |" in l for l in lines) and "best trial" in lines[-1]
  for r in table:
    _assert_unlocked(workdir / r["workdir"])


def _load_config_file(path):
  import importlib.util  # pylint: disable=import-outside-toplevel
  spec = importlib.util.spec_from_file_location("trial_config", path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module.get_config()


def test_a_trial_trained_again_from_its_config_file_gives_the_same_valid_rmse(
    three_trials, tmp_path):
  workdir, results, _ = three_trials
  cfg = _load_config_file(workdir / "best_config.py")
  again = trainer_registry.select(cfg)(cfg, str(tmp_path / "again"))
  assert again["valid/rmse"] == results["valid/rmse"]
  assert again["test/rmse"] == results["test/rmse"]
  trial_cfg = _load_config_file(workdir / results["best_workdir"] / "config.py")
  assert trial_cfg.to_dict() == cfg.to_dict()


def test_rerunning_continues_the_study(three_trials, data, tmp_path):
  workdir = tmp_path / "study"
  shutil.copytree(three_trials[0], workdir)
  before = _table(workdir)
  lines = []
  _tune(_config(data), workdir, lines, max_trials=3)  # nothing left to do
  assert lines[0].endswith("3 trials so far, at most 3 trials")
  assert not any(l.startswith("trial ") for l in lines)
  _tune(_config(data), workdir, max_trials=4)
  after = _table(workdir)
  assert after[:3] == before and after[3]["trial"] == "3"
  assert after[3]["state"] in ("complete", "pruned")


def test_another_config_is_refused_in_one_line(three_trials, data, tmp_path):
  workdir = tmp_path / "study"
  shutil.copytree(three_trials[0], workdir)
  cfg = _config(data)
  with cfg.unlocked():
    cfg.model.activation = "elu"
  with pytest.raises(ConfigError, match="holds a study of another config.*model.activation"):
    _tune(cfg, workdir, max_trials=4)
  with pytest.raises(ConfigError, match="fixed"):  # other overrides: another search space
    study_lib.tune(_config(data), str(workdir), study_lib.Settings(max_trials=4),
                   fixed=FIXED + ["model.dropout"], log=lambda _: None)


def test_pruned_trials_unwind_and_are_marked(data, tmp_path):
  workdir = tmp_path / "study"
  with pytest.raises(report.NoWinner, match="no trial has completed yet.*2 pruned"):
    study_lib.tune(_config(data), str(workdir), study_lib.Settings(max_trials=2),
                   fixed=FIXED, log=lambda _: None,
                   pruner=optuna.pruners.ThresholdPruner(upper=0.0))  # prunes every trial
  table = _table(workdir)
  assert [r["state"] for r in table] == ["pruned", "pruned"]
  assert [r["epochs"] for r in table] == ["1", "1"]
  for r in table:
    rows = (workdir / r["workdir"] / "metrics.jsonl").read_text().splitlines()
    assert len(rows) == 1 and json.loads(rows[0])["valid/rmse"] == pytest.approx(
        float(r["valid_rmse"]))
    assert not (workdir / r["workdir"] / "results.json").exists()
    _assert_unlocked(workdir / r["workdir"])
  _assert_unlocked(workdir)
  assert not (workdir / "results.json").exists() and (workdir / "trials.md").exists()


def test_the_budget_cuts_a_running_trial_and_an_interrupted_one_is_marked(data, tmp_path):
  workdir = tmp_path / "study"
  cfg = _config(data)
  # A trial a killed tuner left running: claim the study as tune() would, ask, stop.
  name, params = spaces.space_for(cfg)
  params = spaces.searched(params, FIXED)
  os.makedirs(workdir)
  study_lib.claim(str(workdir), study_lib.identity(cfg, name, params, FIXED))
  study_lib.open_study(str(workdir), study_lib.Settings()).ask()
  now = [0.0]

  def later(row):  # the clock jumps past the budget once the first epoch is written
    del row
    now[0] = 1e9

  with metrics.observing(later), pytest.raises(report.NoWinner):
    study_lib.tune(cfg, str(workdir), study_lib.Settings(budget_s=60.0), fixed=FIXED,
                   log=lambda _: None, clock=lambda: now[0])
  table = _table(workdir)
  assert [(r["trial"], r["state"]) for r in table] == [("0", "interrupted"),
                                                       ("1", "cut (budget)")]
  assert table[1]["valid_rmse"] and table[1]["epochs"] == "1"


def test_bad_settings_and_workdirs_are_refused(data, tmp_path):
  cfg = _config(data)
  with pytest.raises(ValueError, match="--budget.*--trials"):
    _tune(cfg, tmp_path / "a")
  (tmp_path / "file").write_text("x")
  with pytest.raises(workdir_lib.WorkdirError, match="a file, not a folder"):
    _tune(cfg, tmp_path / "file", max_trials=1)
  (tmp_path / "run").mkdir()
  (tmp_path / "run" / "config.json").write_text(json.dumps({"data": {}, "model": {},
                                                            "train": {}}))
  with pytest.raises(workdir_lib.WorkdirError, match="holds a training run, not a study"):
    _tune(cfg, tmp_path / "run", max_trials=1)
  (tmp_path / "other").mkdir()
  (tmp_path / "other" / "trials.csv").write_text("x")
  with pytest.raises(workdir_lib.WorkdirError, match="not a study of autorec_jax.*trials.csv"):
    _tune(cfg, tmp_path / "other", max_trials=1)
  with cfg.unlocked():
    cfg.data.valid_fraction = 0.0
  with pytest.raises(ConfigError, match="no validation part"):
    _tune(cfg, tmp_path / "b", max_trials=1)


def test_failed_trials_are_recorded_and_three_in_a_row_stop_the_search(data, tmp_path):
  cfg = _config(data)
  with cfg.unlocked():
    cfg.model.hidden = (400_000_000,)  # every trial is refused: too big for memory
  workdir = tmp_path / "study"
  lines = []
  with pytest.raises(study_lib.StudyError, match="3 trials in a row failed, the last with: "
                     "the model does not fit"):
    _tune(cfg, workdir, lines, max_trials=5)
  assert [r["state"] for r in _table(workdir)] == ["failed"] * 3
  assert "does not fit" in _table(workdir)[0]["error"]
  assert lines[1].startswith("trial 0  failed: the model does not fit")
  _assert_unlocked(workdir)


def test_settings_decided_by_the_data_are_decided_first_and_the_search_starts_there(
    data, tmp_path):
  cfg = _config(data)
  with cfg.unlocked():  # the item-based default's: decided by the data
    cfg.preprocess.bias = "auto"
    cfg.optim.weight_decay = None
  lines = []
  _tune(cfg, tmp_path / "study", lines, max_trials=1)
  # The synthetic data has 20.5 train ratings per user and item: sparse.
  assert lines[0].startswith("preprocess.bias=auto: row (20.5 train ratings per user and "
                             "item"), lines[0]
  trial_cfg = _load_config_file(tmp_path / "study" / "trials" / "0000" / "config.py")
  assert (trial_cfg.preprocess.bias, trial_cfg.optim.weight_decay) == ("row", 1e-2)
