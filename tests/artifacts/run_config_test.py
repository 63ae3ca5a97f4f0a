"""A saved config.json read back as a typed config, as a config file returns it."""

import json

import pytest

from autorec_jax.artifacts import run_config
from autorec_jax.data.errors import DataFormatError
from configs import movielens_1m


def test_typed_config_round_trips_and_takes_overrides(tmp_path):
  cfg = movielens_1m.get_config("user")
  run_config.write_config(cfg, str(tmp_path))
  back = run_config.typed_config(str(tmp_path / "config.json"))
  assert run_config.config_json(back) == run_config.config_json(cfg)
  assert back.model.hidden == (256, 64) and isinstance(back.model.hidden, tuple)
  back.data.path = "ratings.csv"  # a placeholder keeps its type: it can be set
  with pytest.raises(TypeError):
    back.data.path = 3


def test_typed_config_refuses_unknown_fields_and_non_objects(tmp_path):
  path = tmp_path / "config.json"
  path.write_text(json.dumps({"model": {"hidden": [3], "lambda_9": 1.0}}))
  with pytest.raises(DataFormatError, match="model.lambda_9"):
    run_config.typed_config(str(path))
  path.write_text("[1, 2]")
  with pytest.raises(DataFormatError, match="expected a JSON object of config sections"):
    run_config.typed_config(str(path))
