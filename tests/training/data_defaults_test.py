"""The settings whose default depends on the data: normalisation, row means, weight
decay and lambda."""

import math

import numpy as np
import pytest

from autorec_jax.data.types import Ratings
from autorec_jax.training import data_defaults
from autorec_jax.training import loop
from configs import movielens_1m
from tests import synthetic


@pytest.mark.parametrize("scale", [(1, 5), (0.5, 5), (0, 5), (1, 7), (1, 4)])
def test_unset_scale_keeps_one_to_five_like_ratings_as_they_are(scale):
  choice = data_defaults.choose_scale(None, scale)
  assert choice.on is False and "1..5-like" in choice.why


@pytest.mark.parametrize("scale", [(1, 100), (0, 100), (-10, 10), (1, 10), (0, 1), (-1, 1),
                                   (1, 3)])
def test_unset_scale_maps_other_scales_to_minus_one_one(scale):
  choice = data_defaults.choose_scale(None, scale)
  assert choice.on is True and "not 1..5-like" in choice.why


def test_a_given_scale_wins():
  assert data_defaults.choose_scale(True, (1, 5)).on is True
  assert data_defaults.choose_scale(False, (1, 100)).on is False
  record = data_defaults.scale_record(data_defaults.choose_scale(None, (1, 100)), (1, 100))
  assert record["rating_scale"] == [1.0, 100.0] and record["preprocess/scale"] is True


def test_unset_reg_grows_as_ratings_per_user_or_item_fall():
  def reg(kind, users, items, ratings=100_000, rank=20):
    return data_defaults.choose_reg(None, kind=kind, rank=rank, num_ratings=ratings,
                                    num_users=users, num_items=items).value

  # MovieLens-1M's train part: ~142 ratings per user, the paper's lambda.
  assert reg("als", 6040, 3706, ratings=855_179) == pytest.approx(0.030, abs=0.001)
  assert reg("svd", 6040, 3706, ratings=855_179, rank=30) == pytest.approx(0.030, abs=0.001)
  # The smaller of ratings per user and per item counts.
  assert reg("als", 600, 3300) == reg("als", 3300, 600) > reg("als", 600, 600)
  assert reg("als", 600, 3300) == pytest.approx(0.08 * math.sqrt(20 / (100_000 / 3300)))
  assert reg("als", 6000, 3300, rank=40) > reg("als", 6000, 3300, rank=20)


def test_a_given_reg_wins():
  choice = data_defaults.choose_reg(0.5, kind="als", rank=20, num_ratings=10, num_users=1,
                                    num_items=1)
  assert choice.value == 0.5 and choice.why == "model.reg=0.5"
  zero = data_defaults.choose_reg(0.0, kind="svd", rank=20, num_ratings=10, num_users=1,
                                  num_items=1)
  assert zero.value == 0.0


def _sparsity(bias, weight_decay, ratings, users, items, scaled=False):
  return data_defaults.choose_sparsity(bias, weight_decay, scaled=scaled,
                                       num_ratings=ratings, num_users=users, num_items=items)


def test_auto_bias_removes_row_means_where_few_ratings_stand_behind_each_weight():
  # MovieLens-1M's train part: 181 ratings per user and item: raw ratings, decay 3e-4.
  dense = _sparsity("auto", None, 855_179, 6040, 3706)
  assert (dense.bias, dense.weight_decay) == ("none", 3e-4)
  assert dense.why == ("preprocess.bias=auto: none (180.8 train ratings per user and item "
                       "(geometric mean) >= 32); optim.weight_decay unset: 0.0003 (180.8 "
                       "train ratings per user and item >= 32)")
  # 100,000 ratings drawn from it: 19 per user and item: each row's mean removed,
  # the strong decay.
  sparse = _sparsity("auto", None, 85_500, 5947, 3320)
  assert (sparse.bias, sparse.weight_decay) == ("row", 1e-2)
  assert sparse.why.endswith("optim.weight_decay unset: 0.01 (sparse, row means removed)")
  # Few items with many ratings each (Jester's shape) count as dense.
  assert _sparsity("auto", None, 527_000, 24_938, 100).bias == "none"
  # The threshold: fewer than 32 is sparse; the measure is symmetric.
  assert _sparsity("auto", None, 3199, 100, 100).bias == "row"
  assert _sparsity("auto", None, 3200, 100, 100).bias == "none"
  assert _sparsity("auto", None, 5000, 40, 1000) == _sparsity("auto", None, 5000, 1000, 40)


def test_scaled_ratings_have_row_means_removed_with_the_small_decay_when_dense():
  jester = _sparsity("auto", None, 527_000, 24_938, 100, scaled=True)
  assert (jester.bias, jester.weight_decay) == ("row", 3e-4)
  assert "ratings scaled" in jester.why
  assert _sparsity("auto", None, 85_500, 5947, 3320, scaled=True).weight_decay == 1e-2


def test_a_given_bias_or_weight_decay_wins():
  # Raw rows on sparse data keep the small decay: a strong one pulls them towards 0.
  assert _sparsity("none", None, 10, 10, 10) == data_defaults.SparsityChoice(
      "none", 3e-4, "optim.weight_decay unset: 0.0003 (sparse, raw rows)")
  assert _sparsity("row", None, 10**6, 10, 10).weight_decay == 3e-4
  assert _sparsity("row", None, 10, 10, 10).weight_decay == 1e-2
  given = _sparsity("auto", 0.0, 10, 10, 10)
  assert (given.bias, given.weight_decay) == ("row", 0.0)
  assert _sparsity("none", 1e-3, 10, 10, 10) == data_defaults.SparsityChoice(
      "none", 1e-3, "as set")


def test_resolve_sparsity_counts_the_train_part_and_makes_the_config_concrete():
  cfg = movielens_1m.get_config()
  assert cfg.preprocess.bias == "auto" and cfg.optim.weight_decay is None
  # 92 ratings of 4 users (of 10) on 40 items (of 50): 7.3 per user and item.
  user = np.repeat([0, 1, 2, 3], [30, 30, 30, 2])
  train = Ratings(user=user.astype(np.int32), item=np.arange(92, dtype=np.int32) % 40,
                  rating=np.full(92, 4.0, np.float32), timestamp=None,
                  user_ids=np.arange(10), item_ids=np.arange(50))
  resolved, choice = data_defaults.resolve_sparsity(cfg, train, (1.0, 5.0))
  assert (resolved.preprocess.bias, resolved.optim.weight_decay) == ("row", 1e-2)
  assert choice.why.startswith("preprocess.bias=auto: row (7.3 train ratings per user and item")
  assert cfg.preprocess.bias == "auto" and cfg.optim.weight_decay is None  # a copy
  assert data_defaults.sparsity_record(choice) == {
      "preprocess/bias": "row", "optim/weight_decay": 1e-2, "preprocess/bias_why": choice.why}
  # A -10..10 scale is scaled (preprocess.scale unset), so row means go even when dense.
  with cfg.unlocked():
    cfg.preprocess.bias = "none"
  assert data_defaults.resolve_sparsity(cfg, train, (-10.0, 10.0))[0].optim.weight_decay == 3e-4


def test_a_run_says_and_records_what_the_data_decided(tmp_path, capsys):
  cfg = movielens_1m.get_config("item")
  with cfg.unlocked():
    cfg.data.name, cfg.data.path = "csv", str(synthetic.write_ratings_csv(tmp_path / "r.csv"))
    cfg.model.hidden, cfg.train.num_epochs, cfg.train.batch_size = (16,), 2, 64
    cfg.eval.batch_size, cfg.eval.ranking_ks, cfg.train.progress_bar = 256, (), False
  results = loop.train_and_evaluate(cfg, str(tmp_path / "run"))
  assert (results["preprocess/bias"], results["optim/weight_decay"]) == ("row", 1e-2)
  assert results["preprocess/bias_why"].startswith("preprocess.bias=auto: row (20.5 ")
  assert "ratings 1..5 (as they are, row means removed)" in capsys.readouterr().out
