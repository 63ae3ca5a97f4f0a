"""A run's data: the loaded data set, its split and the three parts."""

from __future__ import annotations

import dataclasses
from typing import Any

from autorec_jax.config import schema
from autorec_jax.data import datasets, splits


@dataclasses.dataclass
class RunData:
  """A run's data: what was loaded, its split, and the three parts."""

  loaded: Any
  split: splits.Split
  train: Any
  valid: Any
  test: Any


def load_data(cfg) -> RunData:
  """Loads and splits the data a config names (the same split on every call).

  Raises DataConfigError (one line naming the data.* fields and the counts) when the
  split cannot give a model anything to learn from: more folds than ratings, or
  settings that leave the train part empty; or when data.valid_fraction is set for
  data with its own validation part (a split matrix's validation mask), which it
  would not change. An empty validation or test part is fine
  (data.valid_fraction=0, data.test_fraction=0, or a data set too small to hold
  one): its metrics are then absent (`null` in results.json).
  """
  loaded = datasets.load(cfg.data)
  ratings = loaded.ratings
  d = cfg.data
  if loaded.is_predefined_valid is not None and d.valid_fraction not in (
      0, schema.base_config().data.valid_fraction):
    raise datasets.DataConfigError(
        f"data.valid_fraction={d.valid_fraction:g} would be ignored: {_source(loaded)} "
        "has its own validation part (a validation mask); leave data.valid_fraction at "
        "its default or set it to 0")
  num_folds = d.num_folds if loaded.is_predefined_test is None else 0
  if num_folds > ratings.num_ratings:
    raise datasets.DataConfigError(
        f"data.num_folds={num_folds} exceeds the {ratings.num_ratings} ratings of "
        f"{_source(loaded)}: some folds would be empty; use at most "
        f"{ratings.num_ratings} folds")
  split = splits.make_split(
      ratings.num_ratings, test_fraction=d.test_fraction, num_folds=num_folds,
      fold=d.fold, valid_fraction=d.valid_fraction, seed=d.seed,
      predefined_test=loaded.is_predefined_test,
      predefined_valid=loaded.is_predefined_valid)
  if len(split.train) == 0:
    raise datasets.DataConfigError(
        f"{_split_fields(d, loaded)} leave no ratings to train on ({ratings.num_ratings} "
        f"ratings in {_source(loaded)}: {len(split.test)} test, {len(split.valid)} valid, "
        "0 train); lower them, or use more data")
  return RunData(loaded, split, ratings.subset(split.train), ratings.subset(split.valid),
                 ratings.subset(split.test))


def _source(loaded) -> str:
  """The data's files, as a message names them."""
  return ", ".join(loaded.files) if loaded.files else loaded.ratings.source


def _split_fields(d, loaded) -> str:
  """The fields that chose the test and validation parts, as `field=value` flags."""
  if loaded.is_predefined_valid is not None:
    return f"the predefined split of data.name={d.name}"
  if loaded.is_predefined_test is not None and d.test_path is None:
    test = f"the test mask of data.path={d.path}"
  elif loaded.is_predefined_test is not None:
    test = f"data.test_path={d.test_path}"
  elif d.num_folds:
    test = f"data.num_folds={d.num_folds}"
  else:
    test = f"data.test_fraction={d.test_fraction}"
  return f"{test} and data.valid_fraction={d.valid_fraction}"
