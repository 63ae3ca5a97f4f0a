"""experiments/kernelnet_timing.py: the reference's round lines timed, a reference that
stops early said in one line, and the ratings file it reads. (Timing the reference
itself needs TensorFlow 1 and its repository, which the suite does not install.)"""

import sys
import types

import numpy as np
import pytest

from experiments import kernelnet_timing as kt


def _fake_reference(tmp_path, rounds):
  (tmp_path / "kernelNet_ml1m.py").write_text(
      "import time\n"
      "print('loading data')\n"
      f"for i in range({rounds}):\n"
      "  time.sleep(0.05)\n"
      "  print('epoch:', i, 'validation rmse: 0.9 train rmse: 0.8', flush=True)\n")
  return str(tmp_path)


def test_reference_rounds_are_the_gaps_between_its_round_lines(tmp_path):
  args = types.SimpleNamespace(tf_python=sys.executable, threads=1, rounds=3)
  rounds = kt.time_reference(args, _fake_reference(tmp_path, 5))
  assert len(rounds) == 3 and all(r >= 0.04 for r in rounds)


def test_a_reference_that_stops_early_is_one_line(tmp_path):
  args = types.SimpleNamespace(tf_python=sys.executable, threads=1, rounds=3)
  with pytest.raises(SystemExit, match="the reference stopped after 1 rounds"):
    kt.time_reference(args, _fake_reference(tmp_path, 1))


def test_ratings_are_written_in_the_reference_format(tmp_path, monkeypatch):
  ratings = types.SimpleNamespace(
      user=np.array([0, 1]), item=np.array([1, 0]), rating=np.array([4.0, 2.0], np.float32),
      user_ids=np.array([10, 20]), item_ids=np.array([7, 8]))
  monkeypatch.setattr("autorec_jax.data.run_data.load_data",
                      lambda cfg: types.SimpleNamespace(loaded=types.SimpleNamespace(
                          ratings=ratings)))
  path = tmp_path / "ml-1m" / "ratings.dat"
  assert kt.write_ratings(str(path)) == 2
  assert path.read_text() == "10::8::4::0\n20::7::2::0\n"
