import numpy as np
import pytest

from autorec_jax.data.preprocess import Preprocessor
from autorec_jax.data.types import Ratings


def _ratings():
  return Ratings(user=np.array([0, 0, 1, 2], np.int32), item=np.array([0, 1, 0, 1], np.int32),
                 rating=np.array([5, 3, 1, 4], np.float32), timestamp=None,
                 user_ids=np.arange(4), item_ids=np.arange(2))


def test_scale_to_unit_interval_and_back():
  r = _ratings()
  pre = Preprocessor.fit(r, orientation="user", scale=True, rating_scale=(1.0, 5.0),
                         bias="none")
  np.testing.assert_allclose(pre.transform(r).rating, [1.0, 0.0, -1.0, 0.5])
  back = pre.inverse(pre.transform(r).rating[:, None], np.zeros(4))[:, 0]
  np.testing.assert_allclose(back, r.rating)


@pytest.mark.parametrize("orientation,expected_bias", [
    ("user", [0.5, -1.0, 0.5, 0.0]),   # user means in [-1, 1] units; user 3 unseen
    ("item", [0.0, 0.25]),
])
def test_row_bias_is_the_train_mean_of_each_row(orientation, expected_bias):
  r = _ratings()
  pre = Preprocessor.fit(r, orientation=orientation, scale=True, rating_scale=(1.0, 5.0),
                         bias="row")
  np.testing.assert_allclose(pre.row_bias, expected_bias, atol=1e-6)
  t = pre.transform(r)
  rows = r.user if orientation == "user" else r.item
  back = pre.inverse(t.rating[:, None], pre.row_bias[rows])[:, 0]
  np.testing.assert_allclose(back, r.rating, rtol=1e-6)


def test_identity_when_off():
  r = _ratings()
  pre = Preprocessor.fit(r, orientation="user", scale=False, rating_scale=(1.0, 5.0),
                         bias="none")
  assert pre.is_identity and pre.transform(r) is r


def test_unknown_bias_is_an_error():
  with pytest.raises(ValueError, match="preprocess.bias"):
    Preprocessor.fit(_ratings(), orientation="user", scale=True, rating_scale=(1, 5),
                     bias="global")
