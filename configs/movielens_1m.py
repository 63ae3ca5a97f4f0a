r"""MovieLens-1M: the default run (item-based autoencoder, 90/10 random split).

  python -m autorec_jax.main --config=configs/movielens_1m.py --workdir=runs/ml1m_item
  python -m autorec_jax.main --config=configs/movielens_1m.py:user --workdir=runs/ml1m_user
  python -m autorec_jax.main --config=configs/movielens_1m.py:tiny --workdir=/tmp/smoke

Variants (`:arg`): `item` (default) and `user` are the tuned I- and U-AutoRec style
models of the README's results table; `svd` and `als` are Strub & Mary's matrix
factorization baselines; `tiny` is a seconds-long smoke run of the same pipeline (two
epochs of a 16-unit model).

Every field can be overridden on the command line, e.g.
`--config.model.hidden='(512,512,1024)' --config.train.refeed_steps=1`; all fields
are listed and documented in autorec_jax/config_schema.py.
"""

from ml_collections import config_dict

from autorec_jax.config_schema import base_config


def get_config(arg: str | None = None) -> config_dict.ConfigDict:
  cfg = base_config()
  variant = arg or "item"
  if variant not in ("item", "user", "tiny", "svd", "als"):
    raise ValueError(f"unknown variant {arg!r}: use item, user, tiny, svd or als")
  if variant in ("item", "tiny"):
    # I-AutoRec shape: one sigmoid layer of 500, linear output, L2, Adam with decay.
    cfg.model.orientation = "item"
    cfg.model.hidden = (500,)
    cfg.model.activation = "sigmoid"
    cfg.optim.learning_rate = 3e-3
    cfg.optim.weight_decay = 3e-4
    cfg.optim.schedule = "exponential"
    cfg.optim.decay_rate = 0.95
    cfg.train.batch_size = 256
    cfg.train.num_epochs = 60
  elif variant == "user":
    # DeepRec shape, small: SELU 256-64 with dropout 0.5 on the code.
    cfg.model.orientation = "user"
    cfg.model.hidden = (256, 64)
    cfg.model.activation = "selu"
    cfg.model.dropout = 0.5
    cfg.optim.learning_rate = 1e-3
    cfg.optim.weight_decay = 2e-4
    cfg.optim.schedule = "exponential"
    cfg.optim.decay_rate = 0.96
    cfg.train.batch_size = 128
    cfg.train.num_epochs = 60
  elif variant == "svd":  # Strub & Mary's SVD baseline: rank 15, lr 0.02, lambda 0.02
    cfg.model.kind, cfg.model.rank, cfg.model.reg = "svd", 15, 0.02
    cfg.optim.name, cfg.optim.learning_rate, cfg.optim.momentum = "sgd", 0.02, 0.0
    cfg.optim.weight_decay, cfg.optim.schedule = 0.0, "constant"
    cfg.train.batch_size, cfg.train.num_epochs = 1024, 40
  elif variant == "als":  # ALS-WR baseline: rank 20, lambda 0.03
    cfg.model.kind, cfg.model.rank, cfg.model.reg = "als", 20, 0.03
    cfg.train.num_epochs = 20
  if variant == "tiny":
    cfg.model.hidden = (16,)
    cfg.optim.learning_rate = 0.02
    cfg.train.num_epochs = 2
    cfg.train.batch_size = 64
    cfg.eval.batch_size = 256
    cfg.train.progress_bar = False
  return cfg
