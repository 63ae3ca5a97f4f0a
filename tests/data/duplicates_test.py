"""Repeated (user, item) pairs: the error names the flag that merges them, and a merge
says how many pairs it merged."""

import pathlib

import pytest
from absl import logging

from autorec_jax.data import readers
from autorec_jax.data.errors import DataFormatError

_ROWS = "u,i,r\n1,10,4\n1,10,2\n2,11,3\n2,11,5\n2,11,1\n3,12,5\n"


def _file(tmp_path: pathlib.Path) -> str:
  path = tmp_path / "dups.csv"
  path.write_text(_ROWS)
  return str(path)


def test_the_error_names_the_flag_to_pass(tmp_path):
  path = _file(tmp_path)
  with pytest.raises(DataFormatError) as err:
    readers.read_ratings(path)
  assert str(err.value) == (
      f"{path}:3: expected each (user, item) pair once, got user 1 item 10 again (first at "
      "line 2); pass --config.data.duplicates=keep_last (or =mean) to merge repeats")


@pytest.mark.parametrize("policy,how", [("keep_last", "kept each one's last rating"),
                                        ("mean", "averaged each one's ratings")])
def test_a_merge_logs_one_warning_with_the_counts(tmp_path, monkeypatch, policy, how):
  path = _file(tmp_path)
  warnings = []
  monkeypatch.setattr(logging, "warning", lambda msg, *args: warnings.append(msg % args))
  raw = readers.read_ratings(path, duplicates=policy)
  assert len(raw.rating) == 3
  assert warnings == [f"{path}: 2 (user, item) pairs occur more than once (3 repeated "
                      f"ratings); {how} (data.duplicates={policy})"]


def test_no_repeats_no_warning(tmp_path, monkeypatch):
  path = tmp_path / "ok.csv"
  path.write_text("u,i,r\n1,10,4\n2,11,3\n")
  warnings = []
  monkeypatch.setattr(logging, "warning", lambda msg, *args: warnings.append(msg % args))
  readers.read_ratings(str(path), duplicates="keep_last")
  assert warnings == []
