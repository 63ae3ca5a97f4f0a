"""Tiny trained runs on a synthetic csv, trained once per test session and shared.

`tiny_run(tmp_path_factory, "user")` returns the workdir of a 3-epoch run of a small
model (user- or item-based, with [-1, 1] scaling and row biases unless `plain`),
all on the same synthetic data and split, so the ensemble tests can combine them.
"""

from __future__ import annotations

import pathlib

from autorec_jax.training import loop as train
from configs import movielens_1m
from tests import synthetic

_CACHE: dict[tuple, pathlib.Path] = {}


def config(data_path, orientation: str, *, plain: bool = False, epochs: int = 3):
  cfg = movielens_1m.get_config("tiny")
  cfg.data.name = "csv"
  cfg.data.path = str(data_path)
  cfg.model.orientation = orientation
  cfg.train.num_epochs = epochs
  cfg.train.batch_size = 16
  cfg.eval.batch_size = 32
  if not plain:
    cfg.preprocess.scale = True
    cfg.preprocess.bias = "row"
    cfg.optim.learning_rate = 0.01
  return cfg


def data_file(tmp_path_factory) -> pathlib.Path:
  if "data" not in _CACHE:
    _CACHE["data"] = synthetic.write_ratings_csv(
        tmp_path_factory.mktemp("tiny_data") / "ratings.csv")
  return _CACHE["data"]


def tiny_run(tmp_path_factory, orientation: str, *, plain: bool = False) -> pathlib.Path:
  key = (orientation, plain)
  if key not in _CACHE:
    workdir = tmp_path_factory.mktemp(f"tiny_{orientation}{'_plain' if plain else ''}")
    train.train_and_evaluate(config(data_file(tmp_path_factory), orientation, plain=plain),
                             str(workdir / "run"))
    _CACHE[key] = workdir / "run"
  return _CACHE[key]
