"""Test setup: 8 fake CPU devices before any JAX call, strict rank promotion.

Real data is found through AUTOREC_DATA_DIR (CI points it at ../shared/data); a test
that needs it fails under CI=true when it is missing, and skips elsewhere.
"""

import os
import pathlib

import jax
import pytest

jax.config.update("jax_num_cpu_devices", 8)
jax.config.update("jax_numpy_rank_promotion", "raise")

REPO = pathlib.Path(__file__).resolve().parents[1]
DEFAULT_DATA_DIR = REPO.parent / "shared" / "data"


def shared_data_dir() -> pathlib.Path:
  return pathlib.Path(os.environ.get("AUTOREC_DATA_DIR", DEFAULT_DATA_DIR))


def require_data(relative: str) -> pathlib.Path:
  """The path of a real data file under the data dir, or fail (CI) / skip (elsewhere)."""
  path = shared_data_dir() / relative
  if not path.exists():
    message = f"real data {path} is missing (set AUTOREC_DATA_DIR)"
    if os.environ.get("CI") == "true":
      pytest.fail(message)
    pytest.skip(message)
  return path


def parse_config_flags(argv):
  """The config a command's --config flags give, parsed as autorec_jax.main does."""
  from absl import flags  # pylint: disable=import-outside-toplevel
  from ml_collections import config_flags  # pylint: disable=import-outside-toplevel
  argv = ["prog"] + [a for a in argv if a.startswith("--config")]
  fv = flags.FlagValues()
  config_flags.DEFINE_config_file("config", None, "", flag_values=fv, lock_config=True,
                                  sys_argv=argv)
  fv(argv)
  return fv.config


@pytest.fixture
def ml1m_path() -> pathlib.Path:
  return require_data("movielens-1m/ratings_no_timestamps.csv.gz")
