"""The kernel networks' reference settings: kernelNet (Muller et al. 2018) and GLocal-K
(Han et al. 2021), shared by the data-set configs (configs/movielens_1m.py,
configs/jester.py).

Both are item-based (a row per item, its ratings by every user), two kernelized
sigmoid layers of 500 and a kernelized linear output layer, d = 5, trained by
full-batch L-BFGS (optax) with a history of 10 restarted at every validation round. The
lambdas are given at MovieLens-1M's size and scaled to the data's
(model.kernel.scale_lambdas; autorec_jax.training.full_batch.effective_lambdas).
"""

from __future__ import annotations

from ml_collections import config_dict


def kernelnet(cfg: config_dict.ConfigDict) -> config_dict.ConfigDict:
  """kernelNet: 20 rounds of 50 L-BFGS iterations (the reference's 1,000)."""
  cfg.model.kind = "kernel"
  cfg.model.orientation = "item"
  cfg.model.hidden = (500, 500)
  cfg.model.activation = "sigmoid"
  cfg.model.output_activation = False
  cfg.model.kernel.dim = 5
  cfg.model.kernel.lambda_2 = 60.0
  cfg.model.kernel.lambda_s = 0.013
  cfg.preprocess.scale = False
  cfg.preprocess.bias = "none"
  cfg.lbfgs.iterations = 50
  cfg.lbfgs.memory = 10
  cfg.train.num_epochs = 20
  return cfg


def glocal_k(cfg: config_dict.ConfigDict) -> config_dict.ConfigDict:
  """GLocal-K: kernelNet pre-trained for 20 rounds of 50 iterations, then 30 rounds of
  10 fine-tuning iterations with the 3x3 global kernel (dot_scale 0.5), the
  reference's ML-1M schedule, with its lambdas (70, 0.018)."""
  kernelnet(cfg)
  cfg.model.kernel.lambda_2 = 70.0
  cfg.model.kernel.lambda_s = 0.018
  cfg.model.global_kernel.enabled = True
  cfg.model.global_kernel.size = 3
  cfg.model.global_kernel.dot_scale = 0.5
  cfg.lbfgs.pretrain_rounds = 20
  cfg.lbfgs.pretrain_iterations = 50
  cfg.lbfgs.iterations = 10
  cfg.train.num_epochs = 30
  return cfg
