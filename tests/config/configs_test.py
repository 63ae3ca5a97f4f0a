import importlib
import pathlib

import pytest

from autorec_jax.config import checks as config_checks

CONFIG_DIR = pathlib.Path(__file__).resolve().parents[2] / "configs"
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


# Kuchaiev & Ginsburg, table 4: the layer widths after the input, code dropout.
PAPER_TABLE_4 = {
    "netflix_3m": ([128, 256, 256, 256, 128], 0.65),
    "netflix_6m": ([256, 256, 512, 256, 256], 0.8),
    "netflix_1y": ([256, 256, 512, 256, 256], 0.8),
    "netflix_full": ([512, 512, 1024, 512, 512], 0.8),
}


@pytest.mark.parametrize("name", sorted(PAPER_TABLE_4))
@pytest.mark.parametrize("num_items", [17768, 9000])
def test_netflix_configs_build_the_papers_layers(name, num_items):
  import jax
  import jax.numpy as jnp
  from autorec_jax.models import registry as model_registry
  cfg = importlib.import_module(f"configs.{name}").get_config()
  widths, dropout = PAPER_TABLE_4[name]
  model = model_registry.make_model(cfg.model)
  params = jax.eval_shape(lambda: model.init(jax.random.key(0), jnp.zeros((1, num_items)),
                                             train=False))["params"]
  kernels = [params[f"enc{i}_kernel"].shape for i in range(3)]
  kernels += [params[f"dec{i}_kernel"].shape for i in range(2)]
  kernels.append(params["dec2_kernel"].shape[::-1])  # the output layer's is items-major
  sizes = [num_items] + widths + [num_items]
  assert kernels == list(zip(sizes[:-1], sizes[1:]))
  assert cfg.model.dropout == dropout and cfg.model.activation == "selu"
  assert (cfg.optim.name, cfg.optim.momentum, cfg.optim.learning_rate) == ("sgd", 0.9, 0.005)
  assert cfg.train.batch_size == 128 and cfg.train.refeed_steps == 1
  assert cfg.data.name == "netflix" and cfg.data.time_split == name.split("_")[1]
