"""Tests for autorec_jax.data.splits: sizes, disjointness, determinism, cold counts."""

import numpy as np
import pytest

from autorec_jax.data import splits
from autorec_jax.data.types import Ratings


def _split(n=1000, **overrides):
  kwargs = dict(test_fraction=0.1, num_folds=0, fold=0, valid_fraction=0.1, seed=3)
  kwargs.update(overrides)
  return splits.make_split(n, **kwargs)


def _assert_partition(parts, n):
  for p in parts:
    assert p.dtype == np.int64
    assert np.all(np.diff(p) > 0), "each part is sorted and has no repeats"
  np.testing.assert_array_equal(np.sort(np.concatenate(parts)), np.arange(n))


def test_random_split_sizes_disjoint_cover():
  train, test = splits.random_split(1001, 0.1, seed=0)
  assert len(test) == 100 and len(train) == 901
  _assert_partition([train, test], 1001)


def test_random_split_deterministic_and_seed_dependent():
  a = splits.random_split(500, 0.2, seed=7)
  b = splits.random_split(500, 0.2, seed=7)
  c = splits.random_split(500, 0.2, seed=8)
  np.testing.assert_array_equal(a[1], b[1])
  assert not np.array_equal(a[1], c[1])


def test_random_split_zero_fraction_and_empty():
  train, test = splits.random_split(10, 0.0, seed=0)
  assert len(test) == 0 and len(train) == 10
  train, test = splits.random_split(0, 0.5, seed=0)
  assert len(train) == len(test) == 0


def test_kfold_folds_disjoint_and_cover():
  n, k = 103, 5
  tests = []
  for fold in range(k):
    train, test = splits.kfold_split(n, k, fold, seed=1)
    _assert_partition([train, test], n)
    assert len(test) in (n // k, n // k + 1)
    tests.append(test)
  _assert_partition(tests, n)


def test_kfold_deterministic_per_seed():
  a = splits.kfold_split(50, 3, 1, seed=2)[1]
  np.testing.assert_array_equal(a, splits.kfold_split(50, 3, 1, seed=2)[1])
  assert not np.array_equal(a, splits.kfold_split(50, 3, 1, seed=4)[1])


def test_carve_validation_from_train_only():
  train, test = splits.random_split(200, 0.25, seed=0)
  rest, valid = splits.carve_validation(train, 0.2, seed=0)
  assert len(valid) == 30 and len(rest) == 120
  _assert_partition([rest, valid, test], 200)
  rest0, valid0 = splits.carve_validation(train, 0.0, seed=0)
  assert len(valid0) == 0
  np.testing.assert_array_equal(rest0, train)


def test_make_split_partition_and_determinism():
  s = _split()
  assert (len(s.train), len(s.valid), len(s.test)) == (810, 90, 100)
  _assert_partition([s.train, s.valid, s.test], 1000)
  t = _split()
  for name in ("train", "valid", "test"):
    np.testing.assert_array_equal(getattr(s, name), getattr(t, name))


def test_valid_fraction_does_not_change_test():
  base = _split(valid_fraction=0.0)
  assert len(base.valid) == 0
  for vf in (0.05, 0.3):
    np.testing.assert_array_equal(_split(valid_fraction=vf).test, base.test)
  for fold in range(3):
    a = _split(num_folds=3, fold=fold, valid_fraction=0.0).test
    np.testing.assert_array_equal(_split(num_folds=3, fold=fold, valid_fraction=0.2).test, a)


def test_make_split_uses_kfold_when_num_folds_at_least_2():
  s = _split(n=90, num_folds=3, fold=2, valid_fraction=0.0, test_fraction=0.5)
  np.testing.assert_array_equal(s.test, splits.kfold_split(90, 3, 2, seed=3)[1])
  assert len(s.test) == 30  # test_fraction is ignored for k-fold
  # num_folds 0 or 1 both mean a random split.
  np.testing.assert_array_equal(_split(num_folds=1).test, _split(num_folds=0).test)


def test_predefined_test_mask_wins():
  mask = np.zeros(100, dtype=bool)
  mask[[3, 50, 99]] = True
  s = _split(n=100, num_folds=4, fold=1, predefined_test=mask)
  np.testing.assert_array_equal(s.test, [3, 50, 99])
  _assert_partition([s.train, s.valid, s.test], 100)
  assert len(s.valid) == round(0.1 * 97)


def _toy_ratings():
  # users 0..3, items 0..3; positions 0..7.
  user = np.array([0, 0, 1, 1, 2, 3, 2, 0], np.int32)
  item = np.array([0, 1, 0, 1, 2, 3, 0, 3], np.int32)
  return Ratings(user=user, item=item, rating=np.arange(8, dtype=np.float32),
                 timestamp=None, user_ids=np.arange(4), item_ids=np.arange(4))


def test_summary_cold_counts():
  r = _toy_ratings()
  s = splits.Split(train=np.array([0, 1, 2, 3], np.int64),
                   valid=np.array([4, 6], np.int64),   # user 2 cold; items 2 cold, 0 warm
                   test=np.array([5, 7], np.int64))    # user 3 cold, item 3 cold
  out = s.summary(r)
  assert out["train"] == {"ratings": 4, "users": 2, "items": 2}
  assert out["valid"] == {"ratings": 2, "users": 1, "items": 2, "cold_users": 1,
                          "cold_items": 1, "cold_ratings": 2}
  assert out["test"] == {"ratings": 2, "users": 2, "items": 1, "cold_users": 1,
                         "cold_items": 1, "cold_ratings": 2}
  assert all(type(v) is int for part in out.values() for v in part.values())


def test_summary_rejects_split_of_other_data():
  s = _split(n=100)
  with pytest.raises(ValueError, match="another data set"):
    s.summary(_toy_ratings())


@pytest.mark.parametrize("call, match", [
    (lambda: splits.random_split(10, 1.0, 0), "test_fraction"),
    (lambda: splits.random_split(10, -0.1, 0), "test_fraction"),
    (lambda: splits.random_split(-1, 0.1, 0), "num_ratings"),
    (lambda: splits.random_split(10, 0.1, -3), "seed"),
    (lambda: splits.kfold_split(10, 1, 0, 0), "num_folds"),
    (lambda: splits.kfold_split(10, 3, 3, 0), "fold"),
    (lambda: splits.kfold_split(10, 3, -1, 0), "fold"),
    (lambda: splits.kfold_split(2, 3, 0, 0), "empty"),
    (lambda: splits.carve_validation(np.arange(5), 1.5, 0), "valid_fraction"),
    (lambda: splits.carve_validation(np.zeros((2, 2), int), 0.1, 0), "1-D"),
    (lambda: _split(valid_fraction=1.0), "valid_fraction"),
    (lambda: _split(num_folds=-1), "num_folds"),
    (lambda: _split(num_folds=0, fold=2), "fold"),
    (lambda: _split(n=10, predefined_test=np.zeros(9, bool)), "predefined_test"),
    (lambda: _split(n=10, predefined_test=np.zeros(10, int)), "predefined_test"),
])
def test_argument_errors(call, match):
  with pytest.raises(ValueError, match=match):
    call()


def test_predefined_valid_and_test_masks_are_used_as_given():
  test = np.array([False, True, False, False, True, False])
  valid = np.array([True, False, False, False, False, False])
  s = splits.make_split(6, test_fraction=0.5, num_folds=0, fold=0, valid_fraction=0.5,
                        seed=0, predefined_test=test, predefined_valid=valid)
  assert s.test.tolist() == [1, 4] and s.valid.tolist() == [0]
  assert s.train.tolist() == [2, 3, 5]
  with pytest.raises(ValueError, match="overlap"):
    splits.make_split(6, test_fraction=0.1, num_folds=0, fold=0, valid_fraction=0.0,
                      seed=0, predefined_test=test, predefined_valid=test)
  with pytest.raises(ValueError, match="needs predefined_test"):
    splits.make_split(6, test_fraction=0.1, num_folds=0, fold=0, valid_fraction=0.0,
                      seed=0, predefined_valid=valid)
