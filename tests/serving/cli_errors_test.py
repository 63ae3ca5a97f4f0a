"""Every serving tool fails with one `error:` line naming the path and cause, exit != 0.

Each tool (predict, recommend, export, report) runs against the same damaged workdirs:
missing, a file, without checkpoints, with an invalid config.json, a truncated or
bit-flipped checkpoint file, without or with a damaged data snapshot, and with an
--output that cannot be written. The mains run in this process (fast); the damaged
checkpoint, whose failed read leaves tensorstore callbacks behind, also runs through
the real entry point in a fresh interpreter, so nothing printed at exit slips by.
"""

import glob
import os
import re
import shutil
import subprocess
import sys

import pytest

from autorec_jax.evaluation import report
from autorec_jax.runtime import cli
from autorec_jax.serving import export, predict, recommend
from tests import conftest, trained_runs

_TOOLS = {
    "predict": (predict, lambda w: [f"--workdir={w}"]),
    "recommend": (recommend, lambda w: [f"--workdir={w}", "--user=1001"]),
    "export": (export, lambda w: [f"--workdir={w}"]),
    "report": (report, lambda w: [str(w)]),
}


def _flip_middle_byte(path):
  data = bytearray(open(path, "rb").read())
  data[len(data) // 2] ^= 0x10
  open(path, "wb").write(bytes(data))


def _truncate(path):
  data = open(path, "rb").read()
  open(path, "wb").write(data[:len(data) // 2])


def _checkpoint_data_file(workdir):
  """The data file of the run's checkpoint (its OCDBT key-value store)."""
  (path,) = glob.glob(str(workdir / "checkpoints" / "*" / "state" / "d" / "*"))
  return path


# name: (damage(workdir) -> the workdir to give, what the error must name, tools it
# applies to: report reads only config.json, metrics.jsonl and results.json).
def _missing(w):
  shutil.rmtree(w)
  return w


def _a_file(w):
  shutil.rmtree(w)
  w.write_text("not a workdir")
  return w


def _no_checkpoints(w):
  shutil.rmtree(w / "checkpoints")
  return w


def _bad_config(w):
  (w / "config.json").write_text('{"model": {"hidden": [1, 2}\n')
  return w


def _truncated_checkpoint(w):
  _truncate(_checkpoint_data_file(w))
  return w


def _flipped_checkpoint(w):
  _flip_middle_byte(_checkpoint_data_file(w))
  return w


def _damaged_checkpoint_record(w):
  (path,) = glob.glob(str(w / "checkpoints" / "*" / "meta" / "metadata"))
  _truncate(path)
  return w


def _no_snapshot(w):
  os.remove(w / "data.npz")
  return w


def _flipped_snapshot(w):
  _flip_middle_byte(w / "data.npz")
  return w


_ALL = tuple(_TOOLS)
_SERVING = ("predict", "recommend", "export")
FAULTS = {
    "missing workdir": (_missing, r"{w}: is not a run's workdir \(no such folder\)", _ALL),
    "workdir is a file": (_a_file, r"{w}: is not a run's workdir \(it is a file", _ALL),
    "no checkpoints": (_no_checkpoints, r"{w}/checkpoints: no checkpoint to serve", _SERVING),
    "invalid config.json": (_bad_config, r"{w}/config\.json:1: expected .*JSON, got invalid "
                            r"JSON at column \d+", _ALL),
    "truncated checkpoint": (_truncated_checkpoint, r"checkpoint \d+ under {w}/checkpoints is "
                             r"damaged", _SERVING),
    "bit-flipped checkpoint": (_flipped_checkpoint, r"checkpoint \d+ under {w}/checkpoints is "
                               r"damaged", _SERVING),
    "truncated checkpoint record": (_damaged_checkpoint_record, r"checkpoint \d+ under "
                                    r"{w}/checkpoints is damaged", _SERVING),
    "missing data snapshot": (_no_snapshot, r"{w}/data\.npz: missing", _SERVING),
    "damaged data snapshot": (_flipped_snapshot, r"{w}/data\.npz: damaged", _SERVING),
}


@pytest.fixture(scope="module")
def run(tmp_path_factory):
  return trained_runs.tiny_run(tmp_path_factory, "user")


def _damaged(run, tmp_path, fault):
  workdir = tmp_path / "run"
  shutil.copytree(run, workdir)
  return FAULTS[fault][0](workdir)


def _main(tool, args, capsys):
  """The tool's main in this process: (exit status, stdout, stderr)."""
  module, _ = _TOOLS[tool]
  module.FLAGS.unparse_flags()
  rest = module.FLAGS([tool, *map(str, args)])
  rc = module.main(rest)
  captured = capsys.readouterr()
  return rc, captured.out, captured.err


def _assert_one_line(rc, err, pattern):
  lines = err.strip().splitlines()
  assert rc not in (0, None), err
  assert len(lines) == 1 and lines[0].startswith("error: "), err
  assert "Traceback" not in err
  assert re.search(pattern, lines[0]), (pattern, lines[0])


@pytest.mark.parametrize("tool,fault", [(tool, fault) for fault, (_, _, tools) in
                                        FAULTS.items() for tool in tools])
def test_each_tool_fails_in_one_line_naming_the_path(tool, fault, run, tmp_path, capsys):
  pattern = FAULTS[fault][1]
  workdir = _damaged(run, tmp_path, fault)
  extra = [f"--output={tmp_path / 'out'}"] if tool in ("report", "export") else []
  rc, _, err = _main(tool, _TOOLS[tool][1](workdir) + extra, capsys)
  _assert_one_line(rc, err, pattern.format(w=workdir))
  # Serving only reads a workdir: no folder appears in it.
  if fault == "no checkpoints":
    assert not (workdir / "checkpoints").exists()


@pytest.mark.parametrize("tool", list(_TOOLS))
def test_an_output_that_cannot_be_written_is_one_line(tool, run, tmp_path, capsys):
  a_file = tmp_path / "a_file"
  a_file.write_text("x")
  (tmp_path / "folder.csv").mkdir()
  file_output = tool in ("predict", "recommend")
  under_file = a_file / ("x.csv" if file_output else "dir")
  rc, _, err = _main(tool, _TOOLS[tool][1](run) + [f"--output={under_file}"], capsys)
  _assert_one_line(rc, err, rf"--output={under_file}: {a_file} is a file, not a folder")
  if file_output:
    folder = tmp_path / "folder.csv"
    rc, _, err = _main(tool, _TOOLS[tool][1](run) + [f"--output={folder}"], capsys)
    _assert_one_line(rc, err, rf"--output={folder}: is a folder; expected a file path")
  else:
    rc, _, err = _main(tool, _TOOLS[tool][1](run) + [f"--output={a_file}"], capsys)
    _assert_one_line(rc, err, rf"--output={a_file}: is a file; expected a folder")


@pytest.mark.parametrize("tool", ["predict", "recommend"])
def test_a_failed_write_names_the_output_and_keeps_the_old_file(tool, run, tmp_path, capsys,
                                                              monkeypatch):
  """Tests run as root, where a read-only folder does not stop a write: the rename that
  completes an atomic write is made to fail instead."""
  out = tmp_path / "out.csv"
  out.write_text("old contents\n")

  def refuse(src, dst):
    raise PermissionError(13, "Permission denied", src)

  monkeypatch.setattr(os, "replace", refuse)
  rc, _, err = _main(tool, _TOOLS[tool][1](run) + [f"--output={out}", "--overwrite"], capsys)
  _assert_one_line(rc, err, rf"{out}: cannot write it: Permission denied")
  assert out.read_text() == "old contents\n"
  assert sorted(p.name for p in tmp_path.iterdir()) == ["out.csv"]  # no temporary left


def test_checkpoint_flag_errors_are_one_line(run, tmp_path, capsys):
  for tool in ("predict", "recommend", "export"):
    for value, pattern in (("-1", r"--checkpoint must be 'best', 'latest' or a step number"),
                           ("1.5", r"--checkpoint must be .*got '1\.5'"),
                           ("true", r"--checkpoint must be .*got 'true'"),
                           ("99999", rf"no checkpoint 99999 under {run}/checkpoints; it holds "
                                     r"step")):
      args = _TOOLS[tool][1](run) + [f"--checkpoint={value}"]
      if tool == "export":
        args.append(f"--output={tmp_path / 'export'}")
      rc, _, err = _main(tool, args, capsys)
      _assert_one_line(rc, err, pattern)


def test_debug_env_shows_the_traceback(run, tmp_path, capsys, monkeypatch):
  monkeypatch.setenv(cli.DEBUG_ENV, "1")
  with pytest.raises(FileNotFoundError, match="is not a run's workdir"):
    _main("predict", [f"--workdir={tmp_path / 'nope'}"], capsys)


@pytest.mark.parametrize("tool", ["predict", "recommend", "export"])
def test_damaged_checkpoint_through_the_real_entry_point(tool, run, tmp_path):
  workdir = _damaged(run, tmp_path, "bit-flipped checkpoint")
  args = _TOOLS[tool][1](workdir) + ([f"--output={tmp_path / 'e'}"] if tool == "export" else [])
  module = _TOOLS[tool][0].__name__
  proc = subprocess.run([sys.executable, "-m", module, *args], cwd=conftest.REPO,
                        capture_output=True, text=True, timeout=180)
  _assert_one_line(proc.returncode, proc.stderr,
                   rf"checkpoint \d+ under {workdir}/checkpoints is damaged")
