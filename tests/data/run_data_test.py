"""Tests for autorec_jax.data.run_data: a split that leaves nothing to train on is one
clear error before any work; a tiny data set splits into what it can hold."""

import pathlib

import pytest

from autorec_jax.config.schema import base_config
from autorec_jax.data import run_data
from autorec_jax.data.datasets import DataConfigError
from autorec_jax.data.errors import DataError
from tests import synthetic


def _cfg(path: pathlib.Path, **data):
  cfg = base_config()
  cfg.data.name, cfg.data.path, cfg.data.download = "csv", str(path), False
  for key, value in data.items():
    setattr(cfg.data, key, value)
  return cfg


def test_fractions_that_leave_train_empty_are_one_error_naming_them_and_the_counts(tmp_path):
  path = synthetic.write_ratings_csv(tmp_path / "r.csv")
  num = len(path.read_text().splitlines()) - 1
  with pytest.raises(DataConfigError) as err:
    run_data.load_data(_cfg(path, test_fraction=0.99, valid_fraction=0.99))
  message = str(err.value)
  assert isinstance(err.value, DataError) and "\n" not in message
  assert message.startswith("data.test_fraction=0.99 and data.valid_fraction=0.99 leave no "
                            f"ratings to train on ({num} ratings in {path}: ")
  assert message.endswith("valid, 0 train); lower them, or use more data")


def test_folds_that_leave_train_empty_name_the_folds(tmp_path):
  path = tmp_path / "r.csv"
  path.write_text("u,i,r\n1,1,4\n2,2,3\n3,3,5\n")
  with pytest.raises(DataConfigError, match=r"^data.num_folds=2 and data.valid_fraction=0.9 "
                     r"leave no ratings to train on \(3 ratings in .*: 2 test, 1 valid, 0 train\)"):
    run_data.load_data(_cfg(path, num_folds=2, valid_fraction=0.9))


def test_more_folds_than_ratings_is_one_error(tmp_path):
  path = tmp_path / "r.csv"
  path.write_text("u,i,r\n1,1,4\n2,2,3\n3,3,5\n")
  with pytest.raises(DataConfigError, match=r"^data.num_folds=10 exceeds the 3 ratings of "
                     r".*r.csv: some folds would be empty; use at most 3 folds$"):
    run_data.load_data(_cfg(path, num_folds=10))


def test_a_two_rating_data_set_trains_on_both_with_empty_valid_and_test(tmp_path):
  path = tmp_path / "r.csv"
  path.write_text("u,i,r\n1,1,4\n2,2,3\n")
  data = run_data.load_data(_cfg(path))
  assert (data.train.num_ratings, data.valid.num_ratings, data.test.num_ratings) == (2, 0, 0)
