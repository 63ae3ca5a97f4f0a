import math

import numpy as np
import pytest

from autorec_jax.data.types import Ratings
from autorec_jax.evaluation import buckets


def _ratings(user, item, rating):
  """Ratings over a fixed 4 users x 4 items index space (ids equal indices)."""
  return Ratings(user=np.asarray(user, np.int32), item=np.asarray(item, np.int32),
                 rating=np.asarray(rating, np.float32), timestamp=None,
                 user_ids=np.arange(4), item_ids=np.arange(4))


# Train: user 0 has 1 rating, user 1 has 3, user 2 has 6, user 3 none (cold).
# Items: item 0 has 4 train ratings, item 1 has 3, items 2 and 3 have 2 and 1.
TRAIN = _ratings(user=[0, 1, 1, 1, 2, 2, 2, 2, 2, 2],
                 item=[0, 0, 1, 2, 0, 1, 2, 3, 0, 1],
                 rating=[3] * 10)
# Held-out: user 0 two ratings, user 2 one, user 3 (no train rating) one.
TARGET = _ratings(user=[0, 0, 2, 3], item=[1, 3, 2, 0], rating=[4.0, 2.0, 5.0, 1.0])
PRED = np.array([3.0, 3.0, 4.5, 3.0])  # errors -1, +1, -0.5, +2


def test_user_buckets_exact_numbers():
  out = buckets.rmse_by_activity(TRAIN, TARGET, PRED, by="user", edges=(0, 2, 5, math.inf))
  assert [b["bucket"] for b in out] == ["0-1", "2-4", "5+"]
  # [0, 2): user 0 (1 train rating, errors -1, +1) and cold user 3 (error +2).
  assert out[0]["count"] == 3 and out[0]["rows"] == 2
  assert out[0]["rmse"] == pytest.approx(math.sqrt((1 + 1 + 4) / 3))
  assert out[0]["mae"] == pytest.approx(4 / 3)
  # [2, 5): user 1 has no held-out rating: an empty bucket.
  assert out[1]["count"] == 0 and out[1]["rows"] == 0
  assert math.isnan(out[1]["rmse"]) and math.isnan(out[1]["mae"])
  # [5, inf): user 2 (6 train ratings), error -0.5.
  assert out[2]["count"] == 1 and out[2]["rmse"] == pytest.approx(0.5)
  assert out[2]["mae"] == pytest.approx(0.5)
  assert sum(b["count"] for b in out) == TARGET.num_ratings


def test_item_buckets_use_item_counts():
  out = buckets.rmse_by_activity(TRAIN, TARGET, PRED, by="item", edges=(0, 2, 4, 10))
  # Held-out items 1 (3 train), 3 (1), 2 (2), 0 (4): errors -1, +1, -0.5, +2.
  assert [b["count"] for b in out] == [1, 2, 1]
  assert out[0]["rmse"] == pytest.approx(1.0)
  assert out[1]["rmse"] == pytest.approx(math.sqrt((1 + 0.25) / 2))
  assert out[1]["mae"] == pytest.approx(0.75)
  assert out[2]["rmse"] == pytest.approx(2.0)


def test_default_edges_and_labels():
  out = buckets.rmse_by_activity(TRAIN, TARGET, PRED)
  assert [b["bucket"] for b in out] == ["0-4", "5-9", "10-19", "20-49", "50-99",
                                        "100-199", "200+"]
  assert out[0]["count"] == 3 and out[1]["count"] == 1
  assert buckets.bucket_label(4, 5) == "4"


def test_counts_outside_the_edges_are_left_out():
  out = buckets.rmse_by_activity(TRAIN, TARGET, PRED, by="user", edges=(1, 5))
  assert [b["count"] for b in out] == [2]  # cold user 3 (0 ratings) and user 2 (6) out


@pytest.mark.parametrize("kwargs, match", [
    ({"by": "both"}, "by must be"),
    ({"edges": (5, 0)}, "increasing"),
    ({"edges": (0,)}, "at least two"),
])
def test_bad_arguments(kwargs, match):
  with pytest.raises(ValueError, match=match):
    buckets.rmse_by_activity(TRAIN, TARGET, PRED, **kwargs)


def test_pred_must_match_the_target():
  with pytest.raises(ValueError, match="one prediction per held-out rating"):
    buckets.rmse_by_activity(TRAIN, TARGET, PRED[:3])
