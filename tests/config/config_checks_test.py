import pytest

from autorec_jax.config import checks as config_checks
from configs import movielens_1m


@pytest.mark.parametrize("field,value,message", [
    ("model.dropout", 1.0, "model.dropout=1.0 must be in [0, 1)"),
    ("optim.learning_rate", -0.1, "optim.learning_rate=-0.1 must be > 0"),
    ("model.hidden", (), "model.hidden=() must be a non-empty tuple"),
    ("model.hidden", ("abc",), "model.hidden=('abc',) must be a non-empty tuple"),
    ("model.orientation", "both", "model.orientation='both'"),
    ("model.activation", "gelu", "model.activation='gelu' must be one of"),
    ("data.test_fraction", 1.0, "data.test_fraction=1.0"),
    ("data.num_folds", 1, "data.num_folds=1"),
    ("train.refeed_steps", -1, "train.refeed_steps=-1"),
    ("optim.name", "lbfgs", "optim.name='lbfgs'"),
])
def test_impossible_values_name_the_field(field, value, message):
  cfg = movielens_1m.get_config()
  group, name = field.split(".")
  setattr(cfg[group], name, value)
  with pytest.raises(config_checks.ConfigError) as err:
    config_checks.validate(cfg)
  assert message in str(err.value)


def test_the_shipped_configs_are_valid():
  for variant in ("item", "user", "tiny"):
    config_checks.validate(movielens_1m.get_config(variant))
