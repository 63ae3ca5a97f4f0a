import importlib
import pathlib

import pytest

from autorec_jax import config_checks

CONFIG_DIR = pathlib.Path(__file__).resolve().parents[1] / "configs"
CONFIGS = sorted(p.stem for p in CONFIG_DIR.glob("*.py") if p.stem != "__init__")


@pytest.mark.parametrize("name", CONFIGS)
def test_every_config_file_loads_and_validates(name):
  module = importlib.import_module(f"configs.{name}")
  cfg = module.get_config()
  config_checks.validate(cfg)
  assert module.__doc__ and "python -m autorec_jax.main" in module.__doc__


def test_unknown_variant_is_an_error():
  from configs import movielens_1m
  with pytest.raises(ValueError, match="unknown variant"):
    movielens_1m.get_config("huge")


def test_item_and_user_variants_match_the_readme_models():
  from configs import movielens_1m
  item, user = movielens_1m.get_config("item"), movielens_1m.get_config("user")
  assert item.model.orientation == "item" and tuple(item.model.hidden) == (500,)
  assert user.model.orientation == "user" and tuple(user.model.hidden) == (256, 64)
