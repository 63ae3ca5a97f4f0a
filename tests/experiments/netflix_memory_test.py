"""experiments/netflix_memory.py on a small synthetic tree: it converts, trains one
epoch of configs/netflix_full.py and reports the epoch time and peak RSS."""

import re

import pytest

from experiments import netflix_memory


def test_small_netflix_memory_run_reports_epoch_time_and_peak_rss(tmp_path, capsys):
  rc = netflix_memory.main([f"--dir={tmp_path}", "--ratings=20000",
                            "--config.model.hidden=(4,)", "--config.eval.batch_size=256"])
  out = capsys.readouterr().out
  assert rc == 0, out
  assert re.search(r"trained 1 epoch\(s\): [\d.]+ s per epoch", out)
  peak = float(re.search(r"ru_maxrss ([\d.]+) GiB", out)[1])
  assert 0.05 < peak < 24
  # The conversion is reused by a second run instead of being redone.
  assert netflix_memory.converted(str(tmp_path), 20000, 0) == str(
      tmp_path / "converted_20000_0")


def test_unknown_arguments_are_refused(tmp_path, capsys):
  with pytest.raises(SystemExit) as e:
    netflix_memory.main([f"--dir={tmp_path}", "--epochs=3"])
  assert e.value.code == 2
  assert "unrecognized arguments: --epochs=3" in capsys.readouterr().err
