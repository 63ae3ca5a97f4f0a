"""A run's data: the loaded data set, its split and the three parts."""

from __future__ import annotations

import dataclasses
from typing import Any

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
  """Loads and splits the data a config names (the same split on every call)."""
  loaded = datasets.load(cfg.data)
  ratings = loaded.ratings
  split = splits.make_split(
      ratings.num_ratings, test_fraction=cfg.data.test_fraction,
      num_folds=cfg.data.num_folds, fold=cfg.data.fold,
      valid_fraction=cfg.data.valid_fraction, seed=cfg.data.seed,
      predefined_test=loaded.is_predefined_test,
      predefined_valid=loaded.is_predefined_valid)
  return RunData(loaded, split, ratings.subset(split.train), ratings.subset(split.valid),
               ratings.subset(split.test))
