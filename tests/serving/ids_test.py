import numpy as np
import pandas as pd
import pytest

from autorec_jax.serving import ids

INVALID, UNKNOWN = ids.INVALID, ids.UNKNOWN


def test_integer_ids_match_exactly():
  index = pd.Index(np.array([-3, 7, 1001], np.int64))
  given = [7, np.int32(7), 7.0, np.float32(1001.0), "1001", "-3", 7.5, float("nan"), True,
           np.bool_(False), " 7", "7.0", "+7", "٧", None, b"7", [7], 8, 2**70, "99"]
  expected = [1, 1, 1, 2, 2, 0, INVALID, INVALID, INVALID, INVALID, INVALID, INVALID,
              INVALID, INVALID, INVALID, INVALID, INVALID, UNKNOWN, UNKNOWN, UNKNOWN]
  pos, values = ids.positions(index, given)
  assert pos.tolist() == expected and values == given
  # Arrays take the same rule, by dtype.
  assert ids.positions(index, np.array([7.0, 7.5, np.inf, 1e300]))[0].tolist() == [
      1, INVALID, INVALID, UNKNOWN]
  assert ids.positions(index, np.array([True, False]))[0].tolist() == [INVALID, INVALID]
  assert ids.positions(index, np.array([2**63], np.uint64))[0].tolist() == [UNKNOWN]
  assert ids.positions(index, np.array(["7", "x"]))[0].tolist() == [1, INVALID]
  assert ids.positions(index, pd.Series([1001]))[0].tolist() == [2]
  assert ids.positions(index, [])[0].tolist() == []


def test_string_ids():
  index = pd.Index(np.array(["a1", "42"], object))
  pos, _ = ids.positions(index, ["a1", "42", 42, np.int64(42), 42.0, True, None, "b"])
  assert pos.tolist() == [0, 1, 1, 1, INVALID, INVALID, INVALID, UNKNOWN]
  assert ids.kind_of(index) == "strings"


def test_sequences_only():
  index = pd.Index(np.array([1], np.int64))
  for bad in (1, "1", b"1", None, np.int64(1), np.zeros((1, 1))):
    with pytest.raises(ValueError, match="must be"):
      ids.positions(index, bad, "user_ids")


def test_check_indices():
  assert ids.check_indices([0, np.int64(2)], 3, "user").tolist() == [0, 2]
  assert ids.check_indices(np.array([1], np.uint8), 3, "user").dtype == np.int64
  assert ids.check_indices([], 3, "user").tolist() == []
  for bad, message in (([-1], r"user indices \[-1\] are out of range \[0, 3\)"),
                       ([3], r"\[3\] are out of range"),
                       ([2**70], "out of range"),
                       ([1.0], r"must be integers, got \[1\.0\]"),
                       (np.array([1.0]), "must be integers"),
                       ([True], r"must be integers, got \[True\]"),
                       (np.array([True]), "must be integers"),
                       (["1"], "must be integers"),
                       ([[0]], "must be 1-D"),
                       (0, "must be a sequence")):
    with pytest.raises(ValueError, match=message):
      ids.check_indices(bad, 3, "user")


def test_few():
  assert ids.few([1, 2]) == "[1, 2]"
  assert ids.few(list(range(9))) == "[0, 1, 2, 3, 4] and 4 more"
  assert ids.few(["a"]) == "['a']"
