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
