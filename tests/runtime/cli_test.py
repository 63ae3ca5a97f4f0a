import json
import logging
import re
import sys

import pytest
from absl import flags

from autorec_jax.runtime import cli

def _flag_values():
  fv = flags.FlagValues()
  flags.DEFINE_string("workdir", None, "w", flag_values=fv)
  flags.DEFINE_integer("k", 10, "k", flag_values=fv)
  return fv


def test_own_flags_parse_and_the_rest_go_to_absl():
  fv = _flag_values()
  parse = cli.parser(fv, required=("workdir",))
  rest = parse(["prog", "--workdir=/tmp/x", "--k=3", "--verbosity=0", "pos"])
  assert fv.workdir == "/tmp/x" and fv.k == 3
  assert rest == ["prog", "pos"]


def test_missing_required_and_unknown_flags_exit_2(capsys):
  parse = cli.parser(_flag_values(), required=("workdir",))
  with pytest.raises(SystemExit) as e:
    parse(["prog", "--k=3"])
  assert e.value.code == 2 and "--workdir must be given" in capsys.readouterr().err
  with pytest.raises(SystemExit) as e:
    cli.parser(_flag_values())(["prog", "--nope=1"])
  assert e.value.code == 2 and "nope" in capsys.readouterr().err


def test_one_line_errors(capsys, monkeypatch):
  monkeypatch.delenv(cli.DEBUG_ENV, raising=False)

  def failing(error):
    @cli.one_line_errors
    def main(argv):
      raise error
    return main

  cases = [
      (PermissionError(13, "Permission denied", "/x/out.csv"), "/x/out.csv: Permission denied"),
      (json.JSONDecodeError("Expecting value", "{\n  x", 4),
       "expected JSON, got invalid JSON at line 2 column 3 (Expecting value)"),
      (ValueError("first\nsecond"), "first second"),
      (ValueError("many " + "1, " * 2000), None),
      (KeyError("epoch"), "unexpected KeyError: 'epoch' (set AUTOREC_DEBUG=1 to see the "
                          "traceback)"),
  ]
  for error, expected in cases:
    assert failing(error)(["prog"]) == 1
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and err.startswith("error: ")
    assert len(err) <= cli.MAX_MESSAGE + 10
    if expected is not None:
      assert err.strip() == f"error: {expected}"
  assert failing(KeyboardInterrupt())(["prog"]) == 130
  assert capsys.readouterr().err.startswith("interrupted: ")
  monkeypatch.setenv(cli.DEBUG_ENV, "1")
  with pytest.raises(KeyError):
    failing(KeyError("epoch"))(["prog"])


def test_atomic_output_keeps_the_old_file_when_a_write_fails(tmp_path):
  path = tmp_path / "out.txt"
  path.write_text("old\n")
  with pytest.raises(RuntimeError):
    with cli.atomic_output(str(path)) as f:
      f.write("half")
      raise RuntimeError("stopped half way")
  assert path.read_text() == "old\n" and sorted(tmp_path.iterdir()) == [path]
  with cli.atomic_output(str(tmp_path / "new" / "out.txt")) as f:
    f.write("new\n")
  assert (tmp_path / "new" / "out.txt").read_text() == "new\n"


def test_check_output_file(tmp_path):
  (tmp_path / "f").write_text("x")
  cli.check_output_file(str(tmp_path / "new" / "deeper" / "o.csv"), overwrite=False)
  cli.check_output_file(str(tmp_path / "f"), overwrite=True)
  for path, kind, message in (
      ("", ValueError, "--output is empty"),
      (tmp_path, ValueError, "is a folder; expected a file path"),
      (tmp_path / "f" / "o.csv", ValueError, f"{tmp_path / 'f'} is a file, not a folder"),
      (tmp_path / "f", FileExistsError, "exists; pass --overwrite to replace it")):
    with pytest.raises(kind, match=re.escape(message)):
      cli.check_output_file(str(path), overwrite=False)


def test_orbax_read_tasks_left_unretrieved_stay_off_stderr(capsys, monkeypatch):
  monkeypatch.delenv(cli.DEBUG_ENV, raising=False)
  logger = logging.getLogger("asyncio")
  monkeypatch.setattr(logger, "filters", list(logger.filters))
  monkeypatch.setattr(sys, "unraisablehook", sys.unraisablehook)
  cli.quiet_checkpoint_logs()
  handler = logging.StreamHandler()
  logger.addHandler(handler)
  try:
    logger.error("Task exception was never retrieved\nfuture: <Task finished coro=<"
                 "async_deserialize() done, defined at /x/orbax/checkpoint/serialization.py:1>>")
    logger.error("Task exception was never retrieved\nfuture: <Task finished coro=<mine()>>")
  finally:
    logger.removeHandler(handler)
  err = capsys.readouterr().err
  assert "orbax" not in err and "coro=<mine()>" in err


def test_an_override_of_a_field_the_config_lacks_is_named_by_its_flag():
  error = AttributeError(KeyError("'nope'"))  # what ml_collections raises
  argv = ["prog", "--config=configs/movielens_1m.py", "--config.model.nope=1"]
  assert cli.config_error_line(error, argv) == (
      "--config.model.nope: no such config field (every field is listed in docs/configs.md)")
  assert cli.config_error_line(error) == "'nope'"  # no flag to name: the key as before


CONFIG_FILES = {
    "syntax.py": ("def get_config(:\n", "syntax.py:1: the config file is not valid Python"),
    "imports.py": ("import no_such_module_here\n",
                   "imports.py: the config file's imports failed: No module named"),
    "raises.py": ("def get_config():\n  raise RuntimeError('boom')\n",
                  "raises.py: get_config failed: RuntimeError: boom"),
    "value.py": ("def get_config():\n  raise ValueError('bad arg')\n", "value.py: bad arg"),
    "no_function.py": ("x = 1\n",
                       "no_function.py: expected a function get_config() in the config file"),
    "int.py": ("def get_config():\n  return 5\n",
               "int.py: get_config() returned int, expected an ml_collections ConfigDict"),
    "none.py:v": ("def get_config(arg):\n  return None\n",
                  "none.py: get_config() returned None, expected an ml_collections ConfigDict"),
    "args.py": ("def get_config(arg):\n  return None\n",
                "args.py: get_config() missing 1 required positional argument"),
}


def _parse_config(argv):
  from ml_collections import config_flags  # pylint: disable=import-outside-toplevel
  # ml_collections loads every config file as the module "config_config" and runs the
  # next file in the same namespace: one file per process, as in the tools.
  sys.modules.pop("config_config", None)
  fv = flags.FlagValues()
  flag = config_flags.DEFINE_config_file("config", None, "c", flag_values=fv)
  return cli.parse_config_flags(lambda: fv(argv), flag, argv)


@pytest.mark.parametrize("name", sorted(CONFIG_FILES))
def test_a_config_file_that_does_not_load_is_one_line_naming_it(tmp_path, capsys,
                                                               monkeypatch, name):
  monkeypatch.delenv(cli.DEBUG_ENV, raising=False)
  text, says = CONFIG_FILES[name]
  (tmp_path / name.split(":")[0]).write_text(text)
  with pytest.raises(SystemExit) as e:
    _parse_config(["prog", f"--config={tmp_path / name}"])
  err = capsys.readouterr().err
  assert e.value.code == 2
  assert err.startswith("error: ") and err.count("\n") == 1, err
  assert f"{tmp_path}/{says}" in err, err


@pytest.mark.parametrize("path, says", [
    ("folder", "folder: Is a directory (expected a config file"),
    ("missing.py", "missing.py: No such file or directory (expected a config file"),
])
def test_a_config_path_that_is_no_file_is_one_line(tmp_path, capsys, monkeypatch, path,
                                                   says):
  monkeypatch.delenv(cli.DEBUG_ENV, raising=False)
  (tmp_path / "folder").mkdir()
  with pytest.raises(SystemExit) as e:
    _parse_config(["prog", f"--config={tmp_path / path}"])
  err = capsys.readouterr().err
  assert e.value.code == 2 and err.count("\n") == 1 and f"{tmp_path}/{says}" in err, err


def test_a_good_config_parses_and_an_unknown_variant_names_the_file(capsys, monkeypatch):
  monkeypatch.delenv(cli.DEBUG_ENV, raising=False)
  assert _parse_config(["prog", "--config=configs/movielens_1m.py:tiny", "x"]) == ["prog", "x"]
  with pytest.raises(SystemExit):
    _parse_config(["prog", "--config=configs/movielens_1m.py:bogus"])
  assert capsys.readouterr().err.startswith(
      "error: configs/movielens_1m.py: unknown variant 'bogus': use one of item, ")


def test_config_file_is_read_from_either_flag_form():
  assert cli.config_file(["p", "--config=a/b.py:v"]) == "a/b.py"
  assert cli.config_file(["p", "--config", "c.py"]) == "c.py"
  assert cli.config_file(["p", "--workdir=x"]) == ""
