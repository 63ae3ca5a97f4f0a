"""experiments/deeprecommender_timing.py: the files DeepRecommender reads, the settings it
gets from a config, the report's ratios, and its errors. (Timing DeepRecommender itself
needs torch and a clone of its repository, neither of which the suite installs.)"""

import subprocess
import sys
import types

import numpy as np
import pytest

from autorec_jax.data.types import Ratings
from experiments import deeprecommender_timing as dt
from tests import conftest

REPO = conftest.REPO


def _ratings(users, items, values):
  return Ratings(user=np.array(users, np.int32), item=np.array(items, np.int32),
                 rating=np.array(values, np.float32), timestamp=None,
                 user_ids=np.arange(10), item_ids=np.arange(10))


def _lines(path):
  return [line.rstrip("\n").split("\t") for line in open(path, encoding="utf-8")]


def test_export_writes_tab_separated_triples_and_drops_unseen_validation_rows(tmp_path):
  data = types.SimpleNamespace(
      train=_ratings([0, 0, 1, 2], [0, 1, 1, 2], [5, 3.5, 1, 4]),
      # user 3 and item 4 never occur in train: DeepRecommender's maps have no entry.
      valid=_ratings([0, 3, 1, 2], [2, 0, 4, 0], [2, 4, 3, 1]))
  dirs = dt.export_split(data, str(tmp_path))
  assert _lines(f"{dirs['train_dir']}/train.txt") == [
      ["0", "0", "5"], ["0", "1", "3.5"], ["1", "1", "1"], ["2", "2", "4"]]
  assert _lines(f"{dirs['valid_dir']}/valid.txt") == [["0", "2", "2"], ["2", "0", "1"]]


def _config(**overrides):
  cfg = conftest.parse_config_flags(["--config=configs/movielens_1m.py:deeprec"])
  with cfg.unlocked():
    for key, value in overrides.items():
      group, field = key.split("__")
      cfg[group][field] = value
  return cfg


def test_worker_spec_carries_the_configs_model_and_optimizer():
  spec = dt.worker_spec(_config(), {"train_dir": "t", "valid_dir": "v"}, deeprec_dir="d",
                        threads=2, refeed=1, epochs=3)
  assert spec["hidden"] == [512, 512, 1024] and spec["activation"] == "selu"
  assert spec["dropout"] == 0.8 and spec["lr"] == 0.005 and spec["batch_size"] == 128
  assert spec["tied"] is False and spec["output_activation"] is True
  assert (spec["threads"], spec["refeed"], spec["epochs"]) == (2, 1, 3)
  assert spec["train_dir"] == "t" and spec["deeprec_dir"].endswith("d")


@pytest.mark.parametrize("overrides,message", [
    ({"model__orientation": "item"}, "user rows"),
    ({"optim__name": "adam"}, "momentum 0.9"),
    ({"optim__momentum": 0.8}, "momentum 0.9"),
])
def test_worker_spec_refuses_what_run_py_cannot_train(overrides, message):
  with pytest.raises(ValueError, match=message):
    dt.worker_spec(_config(**overrides), {}, deeprec_dir="d", threads=1, refeed=0, epochs=1)


def test_report_divides_their_time_by_ours():
  row = {"threads": 2, "refeed": 0,
         "theirs": {"epoch_s": [9.0, 2.0, 2.2, 2.4], "eval_s": 10.0, "valid_rmse": 1.0},
         "ours": {"epoch_s": 1.1, "eval_s": 0.5, "valid_rmse_per_epoch": [1.2, 0.9]}}
  table = dt.report_lines([row])
  assert table[2] == ("| 2 | 0 | 2.20 | 1.10 | 2.00x | 10.00 | 0.50 | 20x | "
                      "1.0000 / 0.9000 |")


def test_config_flags_are_handed_on_in_both_spellings():
  argv = ["--deeprec_dir=/d", "--config", "configs/a.py:x", "--config.model.dropout=0.5",
          "--config.train.batch_size", "64", "--threads=2", "--configure=no"]
  assert dt.config_args(argv) == ["--config", "configs/a.py:x", "--config.model.dropout=0.5",
                                  "--config.train.batch_size", "64"]


def test_a_directory_that_is_not_deeprecommender_is_a_one_line_error(tmp_path):
  proc = subprocess.run(
      [sys.executable, "experiments/deeprecommender_timing.py",
       f"--deeprec_dir={tmp_path}", "--config=configs/movielens_1m.py:tiny",
       "--config.model.orientation=user", "--config.optim.name=sgd",
       "--config.optim.momentum=0.9"],
      cwd=REPO, capture_output=True, text=True, check=False)
  assert proc.returncode == 1
  assert "is not a clone of github.com/NVIDIA/DeepRecommender" in proc.stderr
  assert "Traceback" not in proc.stderr
