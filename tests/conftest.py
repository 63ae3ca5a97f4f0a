"""Test setup: 8 fake CPU devices before any JAX call, strict rank promotion.

Real data is found through AUTOREC_DATA_DIR (CI points it at ../shared/data); a test
that needs it fails under CI=true when it is missing, and skips elsewhere.
"""

import importlib.util
import os
import pathlib

import jax
import pytest

jax.config.update("jax_num_cpu_devices", 8)
jax.config.update("jax_numpy_rank_promotion", "raise")

REPO = pathlib.Path(__file__).resolve().parents[1]

# Many tests train the same tiny models again (a run and its resumed twin, each
# parametrisation): JAX's persistent compilation cache lets every pytest process,
# and the next suite run, load a program compiled once instead of compiling it again.
# AUTOREC_TEST_JAX_CACHE moves it (tests/without_native.sh points its copy of the
# checkout at this one's). Programs are keyed by their whole text, constants included,
# so a hit is the same program. The commands that tests start as subprocesses do not
# use it: they run as a user's would.
jax.config.update("jax_compilation_cache_dir", os.environ.get(
    "AUTOREC_TEST_JAX_CACHE", str(REPO / ".pytest_cache" / "jax_compilation_cache")))
jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.2)
jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)

DEFAULT_DATA_DIR = REPO.parent / "shared" / "data"

# Tests sit beside the package they test (tests/data for autorec_jax/data, ...).
# tests/native tests the optional native CPU path (autorec_jax/native): its tests get
# the `native` marker, and without the package they are not collected at all
# (`make test-no-native` runs the rest with -m "not native"). tests/e2e holds the
# end-to-end runs of `python -m autorec_jax.main` (marker `e2e`).
NATIVE_INSTALLED = importlib.util.find_spec("autorec_jax.native") is not None
collect_ignore = [] if NATIVE_INSTALLED else ["native"]
_MARKERS = {"native": pytest.mark.native, "e2e": pytest.mark.e2e}


def pytest_collection_modifyitems(items):
  for item in items:
    marker = _MARKERS.get(item.path.parent.name)
    if marker is not None:
      item.add_marker(marker)


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
