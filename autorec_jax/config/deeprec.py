"""DeepRec's Netflix settings (Kuchaiev & Ginsburg 2017, section 3 and table 4).

Shared by configs/netflix_{3m,6m,1y,full}.py, which differ only in the time split,
the layer widths and the dropout: SELU in every layer, dropout on the code, SGD with
momentum 0.9, batch 128, learning rate 0.005 with one dense re-feeding step, 100 epochs
(halved at epochs 24, 36, 48, 66 and 72 as DeepRecommender's MultiStepLR), the best
checkpoint by the split's validation half, then the test half. Variant `tiny` shrinks
the layers 32x for a seconds-long CPU run on a small synthetic tree.
"""

from __future__ import annotations

from ml_collections import config_dict

from autorec_jax.config.schema import base_config

# DeepRecommender's MultiStepLR for momentum SGD: halve at these epochs.
DEEPREC_DECAY_EPOCHS = (24, 36, 48, 66, 72)


def netflix_config(time_split: str, hidden: tuple[int, ...], dropout: float,
                   variant: str | None) -> config_dict.ConfigDict:
  """The paper's model for one Netflix time split; variant `tiny` shrinks it for CPU."""
  if variant not in (None, "", "tiny"):
    raise ValueError(f"unknown variant {variant!r}: netflix configs have only 'tiny'")
  cfg = base_config()
  cfg.data.name = "netflix"
  cfg.data.time_split = time_split
  cfg.data.valid_fraction = 0.0  # the split's own valid half is used
  cfg.model.orientation = "user"  # U-AutoRec style: a row per customer
  cfg.model.hidden = hidden
  cfg.model.activation = "selu"
  cfg.model.output_activation = True  # DeepRec applies the activation in every layer
  cfg.model.dropout = dropout
  cfg.model.kernel_init = "xavier"
  cfg.optim.name = "sgd"
  cfg.optim.momentum = 0.9
  cfg.optim.learning_rate = 0.005
  cfg.optim.weight_decay = 0.0
  cfg.optim.schedule = "multistep"
  cfg.optim.decay_rate = 0.5
  cfg.optim.decay_epochs = DEEPREC_DECAY_EPOCHS
  cfg.train.batch_size = 128
  cfg.train.refeed_steps = 1
  cfg.train.num_epochs = 100
  cfg.train.log_every_steps = 200
  cfg.eval.batch_size = 1024
  if variant == "tiny":
    cfg.model.hidden = tuple(max(4, h // 32) for h in hidden)
    cfg.train.num_epochs = 2
    cfg.train.batch_size = 16
    cfg.eval.batch_size = 64
    cfg.train.progress_bar = False
  return cfg
