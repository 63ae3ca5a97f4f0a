import math

import pytest

from autorec_jax.tuning.budget import Budget, format_duration, parse_duration


@pytest.mark.parametrize("text, seconds", [
    ("90s", 90), ("10m", 600), ("1h", 3600), ("1h30m", 5400), ("2.5m", 150),
    ("1m30s", 90), (" 10M ", 600), ("0.5s", 0.5), (".5m", 30)])
def test_durations_parse_to_seconds(text, seconds):
  assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text, message", [
    ("10", "give a unit"), ("", "is empty"), ("10x", "expected a duration"),
    ("m10", "expected a duration"), ("0m", "longer than 0"), ("-5m", "expected a duration"),
    ("10m junk", "expected a duration"), ("1e3s", "expected a duration")])
def test_bad_durations_are_one_clear_line(text, message):
  with pytest.raises(ValueError, match=message) as e:
    parse_duration(text)
  assert "\n" not in str(e.value) and "--budget" in str(e.value)


def test_format_duration():
  assert [format_duration(s) for s in (0, 30.2, 95, 3600, 5430)] == [
      "0s", "30s", "1m35s", "1h", "1h30m30s"]


def test_budget_counts_earlier_sessions_and_this_one():
  now = [100.0]
  budget = Budget(60.0, spent_before=20.0, clock=lambda: now[0])
  budget.start()
  assert budget.left() == 40.0 and not budget.spent()
  now[0] += 39.0
  assert budget.left() == pytest.approx(1.0)
  now[0] += 1.0
  assert budget.spent()
  unlimited = Budget(None)
  unlimited.start()
  assert unlimited.left() == math.inf and not unlimited.spent()
