"""The settings whose default depends on the data: normalisation and lambda."""

import math

import pytest

from autorec_jax.training import data_defaults


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
