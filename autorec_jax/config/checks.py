"""Checks a resolved config before any work, with one clear message per problem."""

from __future__ import annotations

from autorec_jax.data import preprocess
from autorec_jax.models import registry as model_registry
from autorec_jax.models.autoencoder import ACTIVATIONS, COMPUTE_DTYPES, INITIALIZERS
from autorec_jax.models.sparse import INPUT_PATHS
from autorec_jax.training import optim


class ConfigError(ValueError):
  """A config value that cannot work; the message names the field."""


def validate(cfg) -> None:
  """Raises ConfigError naming the first impossible field of `cfg`."""
  problems = []

  def need(ok: bool, message: str):
    if not ok:
      problems.append(message)

  d, m, t, o, e = cfg.data, cfg.model, cfg.train, cfg.optim, cfg.eval
  need(0.0 <= d.test_fraction < 1.0, f"data.test_fraction={d.test_fraction} must be in [0, 1)")
  need(0.0 <= d.valid_fraction < 1.0,
       f"data.valid_fraction={d.valid_fraction} must be in [0, 1)")
  need(d.num_folds == 0 or d.num_folds >= 2,
       f"data.num_folds={d.num_folds} must be 0 (random split) or >= 2")
  need(d.num_folds == 0 or 0 <= d.fold < d.num_folds,
       f"data.fold={d.fold} must be in [0, data.num_folds={d.num_folds})")
  need(m.kind in model_registry.kinds(),
       f"model.kind={m.kind!r} must be one of {', '.join(model_registry.kinds())}")
  need(m.orientation in ("user", "item"),
       f"model.orientation={m.orientation!r} must be 'user' or 'item'")
  hidden_ok = (isinstance(m.hidden, (tuple, list)) and len(m.hidden) > 0 and
               all(isinstance(h, int) and not isinstance(h, bool) and h > 0
                   for h in m.hidden))
  fractions_ok = all(0.0 < f <= 1.0 for f in m.hidden_fractions)
  need(fractions_ok, f"model.hidden_fractions={m.hidden_fractions!r} must lie in (0, 1]")
  need(not cfg.stacked.enabled or len(m.hidden_fractions or m.hidden) == 2,
       "stacked.enabled needs exactly two hidden layers (model.hidden or "
       "model.hidden_fractions)")
  need(hidden_ok, f"model.hidden={m.hidden!r} must be a non-empty tuple of positive "
       "widths, e.g. '(512,512,1024)'")
  need(m.activation in ACTIVATIONS,
       f"model.activation={m.activation!r} must be one of {sorted(ACTIVATIONS)}")
  need(m.kernel_init in INITIALIZERS,
       f"model.kernel_init={m.kernel_init!r} must be one of {sorted(INITIALIZERS)}")
  need(m.input_path in INPUT_PATHS,
       f"model.input_path={m.input_path!r} must be one of {list(INPUT_PATHS)}")
  need(m.compute_dtype in COMPUTE_DTYPES,
       f"model.compute_dtype={m.compute_dtype!r} must be one of {sorted(COMPUTE_DTYPES)}")
  need(0.0 <= m.dropout < 1.0, f"model.dropout={m.dropout} must be in [0, 1)")
  need(t.num_epochs >= 1, f"train.num_epochs={t.num_epochs} must be >= 1")
  need(t.batch_size >= 1, f"train.batch_size={t.batch_size} must be >= 1")
  need(e.batch_size >= 1, f"eval.batch_size={e.batch_size} must be >= 1")
  need(t.refeed_steps >= 0, f"train.refeed_steps={t.refeed_steps} must be >= 0")
  need(t.eval_every_epochs >= 1, f"train.eval_every_epochs={t.eval_every_epochs} must be >= 1")
  need(t.log_every_steps >= 1, f"train.log_every_steps={t.log_every_steps} must be >= 1")
  need(t.prefetch >= 0, f"train.prefetch={t.prefetch} must be >= 0")
  need(o.name in optim.OPTIMIZERS, f"optim.name={o.name!r} must be one of {optim.OPTIMIZERS}")
  need(o.schedule in optim.SCHEDULES,
       f"optim.schedule={o.schedule!r} must be one of {optim.SCHEDULES}")
  need(o.learning_rate > 0, f"optim.learning_rate={o.learning_rate} must be > 0")
  need(o.weight_decay >= 0, f"optim.weight_decay={o.weight_decay} must be >= 0")
  need(0.0 <= o.momentum < 1.0, f"optim.momentum={o.momentum} must be in [0, 1)")
  need(o.decay_rate > 0, f"optim.decay_rate={o.decay_rate} must be > 0")
  need(t.on_nan in ("stop", "rollback"), f"train.on_nan={t.on_nan!r} must be stop or rollback")
  need(0.0 < t.rollback_lr_factor < 1.0,
       f"train.rollback_lr_factor={t.rollback_lr_factor} must be in (0, 1)")
  need(t.max_rollbacks >= 0, f"train.max_rollbacks={t.max_rollbacks} must be >= 0")
  need(cfg.ckpt.every_steps >= 0, f"ckpt.every_steps={cfg.ckpt.every_steps} must be >= 0")
  n = cfg.noise
  for name in ("masking", "salt_pepper", "gaussian"):
    value = getattr(n, name)
    need(0.0 <= value <= 1.0, f"noise.{name}={value} must be in [0, 1]")
  need(n.masking + n.salt_pepper + n.gaussian <= 1.0,
       "noise.masking + noise.salt_pepper + noise.gaussian must be <= 1")
  need(n.gaussian_std >= 0.0, f"noise.gaussian_std={n.gaussian_std} must be >= 0")
  need(cfg.loss.alpha >= 0.0 and cfg.loss.beta >= 0.0 and cfg.loss.alpha + cfg.loss.beta > 0,
       f"loss.alpha={cfg.loss.alpha} and loss.beta={cfg.loss.beta} must be >= 0, not both 0")
  need(cfg.preprocess.bias in preprocess.BIASES,
       f"preprocess.bias={cfg.preprocess.bias!r} must be one of {preprocess.BIASES}")
  if problems:
    raise ConfigError("; ".join(problems))
