import pytest

from autorec_jax.config.checks import ConfigError
from autorec_jax.runtime import resources


def test_parameter_count_matches_the_model():
  # DeepRec table 2: n=17,768, one layer of 128 -> 4,566,504 parameters.
  need = resources.estimate(num_inputs=17768, hidden=(128,), tied=False, optimizer="sgd",
                            batch_rows=128, eval_rows=128)
  assert need["params"] == 4_566_504
  tied = resources.estimate(num_inputs=17768, hidden=(128,), tied=True, optimizer="sgd",
                            batch_rows=128, eval_rows=128)
  assert tied["params"] == 4_566_504 - 17768 * 128


def test_too_big_is_a_clear_error_with_the_estimate():
  need = resources.estimate(num_inputs=100_000, hidden=(4096,), tied=False,
                            optimizer="adam", batch_rows=1024, eval_rows=1024)
  with pytest.raises(ConfigError, match=r"about \d+\.\d GiB needed .* lower model.hidden"):
    resources.check_fits(need, limit=1 * resources.GIB, devices=1)
  resources.check_fits(need, limit=1000 * resources.GIB, devices=1)
  resources.check_fits(need, limit=None, devices=1)


def test_the_host_limit_is_known_here():
  assert resources.device_limit_bytes() > 0
