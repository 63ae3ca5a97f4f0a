"""A run's workdir: one run at a time, only our files touched, damage survived, one line
for every failure."""

from __future__ import annotations

import json
import os
import pathlib
import re
import shutil
import signal
import subprocess
import sys
import time

import pytest

from autorec_jax.artifacts import checkpoint, snapshot
from autorec_jax.config.checks import ConfigError
from autorec_jax.training import loop
from autorec_jax.training import workdir as workdir_lib
from tests import conftest, synthetic, trained_runs


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> pathlib.Path:
  return synthetic.write_ratings_csv(tmp_path_factory.mktemp("wd_data") / "ratings.csv")


def _main(workdir, data, *extra, **kwargs):
  args = [sys.executable, "-m", "autorec_jax.main", "--config=configs/movielens_1m.py:tiny",
          f"--workdir={workdir}", "--config.data.name=csv", f"--config.data.path={data}",
          "--config.train.batch_size=16", "--config.eval.batch_size=32",
          "--config.train.num_epochs=2", *extra]
  return subprocess.run(args, cwd=conftest.REPO, capture_output=True, text=True,
                        check=False, timeout=300, **kwargs)


def _one_error_line(proc, *needles):
  assert proc.returncode != 0, proc.stdout
  lines = proc.stderr.strip().splitlines()
  assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
  assert lines and lines[-1].startswith("error: "), proc.stderr[-3000:]
  for needle in needles:
    assert needle in lines[-1], lines[-1]
  return lines[-1]


def test_a_second_run_on_a_locked_workdir_is_refused(tmp_path, data):
  workdir = tmp_path / "run"
  workdir.mkdir()
  with workdir_lib.locked(str(workdir)):
    proc = _main(workdir, data)
    _one_error_line(proc, str(workdir), "in use by another run", f"process {os.getpid()}")
    proc = _main(workdir, data, "--overwrite")
    _one_error_line(proc, "in use by another run")
  assert not (workdir / "checkpoints").exists()


def test_the_lock_is_reentrant_and_released(tmp_path):
  with workdir_lib.locked(str(tmp_path)):
    with workdir_lib.locked(str(tmp_path)):
      pass
  with workdir_lib.locked(str(tmp_path)):  # released: can be taken again
    pass


def test_a_folder_of_the_users_own_files_is_not_written_into(tmp_path, data):
  folder = tmp_path / "mine"
  folder.mkdir()
  (folder / "results.json").write_text('{"mine": 1}')
  (folder / "checkpoints").mkdir()
  (folder / "checkpoints" / "keep.txt").write_text("x")
  for extra in ((), ("--overwrite",)):
    _one_error_line(_main(folder, data, *extra), "is not a run of autorec_jax",
                    "results.json")
  assert (folder / "results.json").read_text() == '{"mine": 1}'
  assert (folder / "checkpoints" / "keep.txt").exists()


def test_a_failed_start_does_not_block_the_corrected_command(tmp_path, data):
  workdir = tmp_path / "run"
  _one_error_line(_main(workdir, tmp_path / "missing.csv"), "missing.csv")
  done = _main(workdir, data, "--config.optim.learning_rate=0.05")
  assert done.returncode == 0, done.stderr[-3000:]


def test_a_resumed_run_keeps_its_config_even_when_config_json_is_gone(tmp_path, data):
  workdir = tmp_path / "run"
  cfg = trained_runs.config(data, "item", epochs=1)
  loop.train_and_evaluate(cfg, str(workdir))
  (workdir / "config.json").unlink()
  cfg.train.num_epochs = 2
  cfg.optim.learning_rate = 0.5
  with pytest.raises(ConfigError, match=r"optim\.learning_rate differ, per checkpoint"):
    loop.train_and_evaluate(cfg, str(workdir))


def _steps(workdir: pathlib.Path) -> list[int]:
  return sorted(int(p.name) for p in (workdir / "checkpoints").iterdir() if p.name.isdigit())


def _damage(step_dir: pathlib.Path, how: str) -> None:
  """Truncates, or flips a byte in the middle of, every array data file of a step."""
  if how == "no_metadata":
    (step_dir / "_CHECKPOINT_METADATA").unlink()
    return
  files = [p for p in step_dir.rglob("*") if p.is_file() and p.stat().st_size > 64
           and "state" in p.parts and p.parent.name == "d"]
  assert files, list(step_dir.rglob("*"))
  for target in files:
    raw = bytearray(target.read_bytes())
    if how == "truncate":
      target.write_bytes(bytes(raw[:len(raw) // 2]))
    else:
      raw[len(raw) // 2] ^= 0x40
      target.write_bytes(bytes(raw))


@pytest.mark.parametrize("how", ["truncate", "flip", "no_metadata"])
def test_a_damaged_latest_checkpoint_falls_back_to_the_newest_intact(tmp_path, data, how):
  # In fresh processes: tensorstore's in-process cache could serve the damaged files.
  workdir = tmp_path / "run"
  assert _main(workdir, data, "--config.train.num_epochs=1").returncode == 0
  (first,) = _steps(workdir)
  shutil.copytree(workdir / "checkpoints" / str(first), tmp_path / "first")
  assert _main(workdir, data).returncode == 0
  expected = json.loads((workdir / "results.json").read_text())
  if first not in _steps(workdir):  # orbax kept only the best, epoch 2's: put 1 back
    shutil.copytree(tmp_path / "first", workdir / "checkpoints" / str(first))
  (latest,) = [s for s in _steps(workdir) if s != first]
  _damage(workdir / "checkpoints" / str(latest), how)
  (workdir / "results.json").unlink()
  resumed = _main(workdir, data)
  assert resumed.returncode == 0, resumed.stderr[-3000:]
  if how != "no_metadata":  # a folder without its metadata is no checkpoint to orbax
    assert f"checkpoint {latest} under" in resumed.stderr, resumed.stderr[-3000:]
    assert "damaged" in resumed.stderr
    assert (workdir / "checkpoints" / f"damaged_{latest}").is_dir()
  # Epoch 2 was trained again from epoch 1's checkpoint: the same result.
  got = json.loads((workdir / "results.json").read_text())
  assert got["test/rmse"] == pytest.approx(expected["test/rmse"], rel=1e-6)
  rows = [json.loads(l) for l in (workdir / "metrics.jsonl").read_text().splitlines()]
  assert [r["epoch"] for r in rows] == [1, 2]


def test_every_checkpoint_damaged_is_one_line(tmp_path, data):
  workdir = tmp_path / "run"
  assert _main(workdir, data).returncode == 0
  for step in _steps(workdir):
    _damage(workdir / "checkpoints" / str(step), "truncate")
  (workdir / "results.json").unlink()
  _one_error_line(_main(workdir, data, "--config.train.num_epochs=3"),
                  "no intact checkpoint", "--overwrite")
  assert _main(workdir, data, "--overwrite").returncode == 0


def test_a_corrupt_config_json_names_the_file(tmp_path, data):
  workdir = tmp_path / "run"
  assert _main(workdir, data).returncode == 0
  (workdir / "config.json").write_text('{"data": {')
  _one_error_line(_main(workdir, data), str(workdir / "config.json"), "not valid JSON")


def test_a_workdir_that_is_a_file_or_under_one_is_one_line(tmp_path, data):
  afile = tmp_path / "afile"
  afile.write_text("mine")
  _one_error_line(_main(afile, data), str(afile), "a file, not a folder")
  _one_error_line(_main(afile / "run", data), "is a file")
  assert afile.read_text() == "mine"


def test_a_fresh_start_keeps_no_rows_of_a_run_that_saved_nothing(tmp_path, data):
  workdir = tmp_path / "run"
  workdir.mkdir()
  cfg = trained_runs.config(data, "item", epochs=1)
  (workdir / "config.json").write_text(json.dumps(cfg.to_dict()))
  (workdir / "metrics.jsonl").write_text('{"step": 3, "epoch": 1, "train/loss": 9.0}\n')
  loop.train_and_evaluate(cfg, str(workdir))
  rows = (workdir / "metrics.jsonl").read_text().splitlines()
  assert len(rows) == 1 and json.loads(rows[0])["train/loss"] != 9.0


def test_ctrl_c_while_starting_is_one_line(tmp_path, data):
  proc = subprocess.Popen(  # pylint: disable=consider-using-with
      [sys.executable, "-m", "autorec_jax.main", "--config=configs/movielens_1m.py:tiny",
       f"--workdir={tmp_path / 'run'}", "--config.data.name=csv",
       f"--config.data.path={data}"], cwd=conftest.REPO, stdout=subprocess.PIPE,
      stderr=subprocess.PIPE, text=True)
  time.sleep(0.3)
  proc.send_signal(signal.SIGINT)
  out, err = proc.communicate(timeout=120)
  assert proc.returncode == 128 + signal.SIGINT, (out, err)
  assert err.strip().splitlines() == [
      "interrupted: stopped by SIGINT; run the same command to resume from the last "
      "checkpoint"]


def test_a_full_disk_is_one_line_and_the_resumed_run_repeats_no_row(tmp_path, data):
  reference = tmp_path / "reference"
  assert _main(reference, data, "--config.train.num_epochs=3").returncode == 0
  workdir = tmp_path / "run"
  full = _main(workdir, data, "--config.train.num_epochs=3",
               env={**os.environ, "AUTOREC_FAULT": "checkpoint_save:2:enospc"})
  _one_error_line(full, str(workdir / "checkpoints"), "No space left on device",
                  "the earlier ones are intact")
  assert len(_steps(workdir)) == 1
  resumed = _main(workdir, data, "--config.train.num_epochs=3")
  assert resumed.returncode == 0, resumed.stderr[-3000:]
  rows = [json.loads(l) for l in (workdir / "metrics.jsonl").read_text().splitlines()]
  assert [r["epoch"] for r in rows] == [1, 2, 3]
  expected = json.loads((reference / "results.json").read_text())
  got = json.loads((workdir / "results.json").read_text())
  assert got["test/rmse"] == pytest.approx(expected["test/rmse"], rel=1e-6)


def test_checkpoint_digest_changes_with_any_byte():
  import numpy as np  # pylint: disable=import-outside-toplevel
  a = {"w": np.arange(6, dtype=np.float32)}
  b = {"w": np.arange(6, dtype=np.float32)}
  b["w"][3] = np.nextafter(b["w"][3], 10)
  assert checkpoint.digest(a) != checkpoint.digest(b)
  assert checkpoint.digest(a) == checkpoint.digest({"w": np.arange(6, dtype=np.float32)})


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
  """A finished 1-epoch run on its own copy of the data: (config, workdir)."""
  root = tmp_path_factory.mktemp("finished")
  own = synthetic.write_ratings_csv(root / "ratings.csv")
  cfg = trained_runs.config(own, "item", epochs=1)
  loop.train_and_evaluate(cfg, str(root / "run"))
  return cfg, root / "run"


def _copy_run(finished, tmp_path) -> pathlib.Path:
  workdir = tmp_path / "run"
  shutil.copytree(finished[1], workdir)
  (workdir / ".lock").unlink(missing_ok=True)
  return workdir


@pytest.mark.parametrize("how, error, says", [
    ("config_not_an_object", workdir_lib.WorkdirError, "expected a JSON object"),
    ("record_not_json", Exception, "data_files.json: damaged"),
    ("checkpoints_a_file", workdir_lib.WorkdirError, "a file, not the run's checkpoint"),
    ("checkpoints_gone", workdir_lib.WorkdirError, "finished run (results.json) without"),
])
def test_a_damaged_finished_run_is_refused_before_anything_is_rewritten(
    tmp_path, finished, how, error, says):
  workdir = _copy_run(finished, tmp_path)
  if how == "config_not_an_object":
    (workdir / "config.json").write_text("null")
  elif how == "record_not_json":
    (workdir / "data_files.json").write_text("{")
  else:
    shutil.rmtree(workdir / "checkpoints")
    if how == "checkpoints_a_file":
      (workdir / "checkpoints").write_text("x")
  before = {n: (workdir / n).read_text() for n in ("metrics.jsonl", "results.json")}
  with pytest.raises(error, match=re.escape(says)):
    loop.train_and_evaluate(finished[0], str(workdir))
  assert {n: (workdir / n).read_text() for n in before} == before


def test_without_its_data_record_a_run_is_checked_against_its_snapshot(tmp_path, finished):
  cfg, _ = finished
  workdir = _copy_run(finished, tmp_path)
  record = (workdir / "data_files.json").read_text()
  (workdir / "data_files.json").unlink()
  loop.train_and_evaluate(cfg, str(workdir))  # the same data: resumed, record rewritten
  assert json.loads((workdir / "data_files.json").read_text()) == json.loads(record)
  (workdir / "data_files.json").unlink()
  data = pathlib.Path(cfg.data.path)
  original = data.read_text()
  lines = original.splitlines()
  user, item, rating = lines[1].split(",")
  lines[1] = f"{user},{item},{6 - int(rating) if rating != '3' else 4}"
  try:
    data.write_text("\n".join(lines) + "\n")
    with pytest.raises(snapshot.DataChanged, match="not the ratings saved in"):
      loop.train_and_evaluate(cfg, str(workdir))
  finally:
    data.write_text(original)
