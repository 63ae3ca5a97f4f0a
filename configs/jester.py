r"""Jester (dataset 1, part 3): the kernelized autoencoders on a -10..10 joke-rating scale.

  python -m autorec_jax.main --config=configs/jester.py:kernelnet --workdir=runs/jester_kernelnet
  python -m autorec_jax.main --config=configs/jester.py:glocal_k --workdir=runs/jester_glocal_k

The same networks and schedules as configs/movielens_1m.py's (autorec_jax/config/
kernel.py), unchanged: their lambdas follow the data's size
(model.kernel.scale_lambdas). Every field can be overridden on the command line;
autorec_jax/config/schema.py documents them.
"""

from ml_collections import config_dict

from autorec_jax.config import kernel
from autorec_jax.config.schema import base_config

VARIANTS = ("kernelnet", "glocal_k")


def get_config(arg: str | None = None) -> config_dict.ConfigDict:
  cfg = base_config()
  cfg.data.name = "jester"
  variant = arg or "kernelnet"
  if variant not in VARIANTS:
    raise ValueError(f"unknown variant {arg!r}: use one of {', '.join(VARIANTS)}")
  return kernel.kernelnet(cfg) if variant == "kernelnet" else kernel.glocal_k(cfg)
