"""Checks a resolved config before any work, with one clear message per problem.

Every numeric, bool and tuple field of `base_config()` has its domain in
`autorec_jax.config.domains.DOMAINS` (type, NaN and infinity, range, what "off" is).
`validate` applies it, then checks what no single field can: choices that live in
registries, sums and pairs of fields, and `data.*` settings that would be silently
ignored by another one (a predefined test part and a random test fraction, folds and
a test file, ...). All problems are reported at once, joined by "; ", each naming the
field as the `--config.group.field=value` flag a user passes.
"""

from __future__ import annotations

from typing import Callable

from autorec_jax.config import schema
from autorec_jax.config.domains import DOMAINS, MISSING, get, show
from autorec_jax.data import preprocess
from autorec_jax.models import registry as model_registry
from autorec_jax.models.autoencoder import ACTIVATIONS, COMPUTE_DTYPES, INITIALIZERS
from autorec_jax.models.sparse import INPUT_PATHS
from autorec_jax.training import optim


class ConfigError(ValueError):
  """A config value that cannot work; the message names the field."""


# data.* fields that only one kind of data set reads, and the fields a predefined
# split makes meaningless: set to anything but their default (or 0, where 0 says
# "none" as well) they would be silently ignored, so they are refused.
_CSV_FIELDS = ("csv_delimiter", "csv_header", "csv_columns", "csv_string_ids")
_NETFLIX_UNUSED = ("test_path", "rating_min", "rating_max", "duplicates", "num_folds",
                   "test_fraction", "valid_fraction", "seed")


def _split_conflicts(d, defaults) -> list[str]:
  """Pairs of data.* settings where one would silently override the other."""
  problems = []

  def changed(field: str, zero_ok: bool = False) -> bool:
    value = getattr(d, field)
    return value != defaults[field] and not (zero_ok and value == 0)

  name = d.name
  if name != "csv":
    for field in _CSV_FIELDS:
      if changed(field):
        problems.append(f"data.{field}={show(getattr(d, field))} applies to "
                        f"data.name=csv only, not data.name={name!r}; leave it unset")
  if name != "netflix" and changed("time_split"):
    problems.append(f"data.time_split={d.time_split!r} applies to data.name=netflix only, "
                    f"not data.name={name!r}; leave it unset")
  if name == "netflix":
    for field in _NETFLIX_UNUSED:
      if changed(field, zero_ok=field in ("test_fraction", "valid_fraction")):
        problems.append(
            f"data.{field}={show(getattr(d, field))} is ignored with data.name=netflix "
            "(a converted time split has its own train, valid and test parts and the "
            "1..5 scale); leave it unset")
    return problems
  if name == "monti":  # the file's test mask is the test part; a matrix has no repeats
    for field in ("test_path", "num_folds", "test_fraction", "duplicates"):
      if changed(field, zero_ok=field == "test_fraction"):
        problems.append(f"data.{field}={show(getattr(d, field))} is ignored with "
                        "data.name=monti (the file's test mask is the test part, and a "
                        "matrix holds each pair once); leave it unset")
    return problems
  if d.test_path is not None:
    if d.num_folds:
      problems.append(f"data.num_folds={d.num_folds} and data.test_path={d.test_path!r} "
                      "both choose the test part; set only one")
    if changed("test_fraction", zero_ok=True):
      problems.append(f"data.test_fraction={show(d.test_fraction)} and "
                      f"data.test_path={d.test_path!r} both choose the test part; set only "
                      "one")
  elif d.num_folds and changed("test_fraction", zero_ok=False):
    problems.append(f"data.test_fraction={show(d.test_fraction)} and "
                    f"data.num_folds={d.num_folds} both choose the test part (a fold is "
                    f"1/{d.num_folds} of the ratings); set only one")
  return problems


def validate(cfg) -> None:
  """Raises ConfigError naming every impossible field of `cfg` (joined by "; ")."""
  problems = []

  def need(ok: bool, message: str):
    if not ok:
      problems.append(message)

  bad = set()
  for field, domain in DOMAINS.items():
    value = get(cfg, field)
    if value is MISSING:
      continue
    message = domain.problem(field, value)
    if message:
      problems.append(message)
      bad.add(field)

  def fine(*fields: str) -> bool:
    """Whether these fields passed their own checks (so cross-checks can use them)."""
    return not bad.intersection(fields)

  d, m, t, o = cfg.data, cfg.model, cfg.train, cfg.optim
  if fine("data.num_folds"):
    need(d.num_folds == 0 or d.num_folds >= 2,
         f"data.num_folds={d.num_folds} must be 0 (random split) or >= 2")
  if fine("data.num_folds", "data.fold"):
    if d.num_folds >= 2:
      need(d.fold < d.num_folds, f"data.fold={d.fold} must be in [0, "
           f"data.num_folds={d.num_folds})")
    else:
      need(d.fold == 0, f"data.fold={d.fold} needs data.num_folds >= 2 (k-fold "
           "cross-validation); leave it at 0 for a random split")
  if fine("data.rating_min", "data.rating_max") and None not in (d.rating_min,
                                                                 d.rating_max):
    need(d.rating_min < d.rating_max, f"data.rating_min={show(d.rating_min)} must be < "
         f"data.rating_max={show(d.rating_max)}")
  for field in ("path", "test_path"):
    value = getattr(d, field)
    need(value is None or (isinstance(value, str) and value.strip() != ""),
         f"data.{field}={value!r} must name a file or folder (or be unset)")
  if fine("data.num_folds", "data.test_fraction", "data.valid_fraction", "data.seed"):
    problems.extend(_split_conflicts(d, schema.base_config().data))

  need(m.kind in model_registry.kinds(),
       f"model.kind={m.kind!r} must be one of {', '.join(model_registry.kinds())}")
  need(m.orientation in ("user", "item"),
       f"model.orientation={m.orientation!r} must be 'user' or 'item'")
  if fine("model.hidden", "model.hidden_fractions"):
    need(not cfg.stacked.enabled or len(m.hidden_fractions or m.hidden) == 2,
         "stacked.enabled needs exactly two hidden layers (model.hidden or "
         "model.hidden_fractions)")
  if m.kind == "kernel":
    if fine("model.hidden", "model.kernel.layers"):
      depth = len(m.hidden_fractions or m.hidden)
      need(all(i <= depth for i in m.kernel.layers),
           f"model.kernel.layers={show(tuple(m.kernel.layers))} must index the "
           f"{depth} hidden layers or the output layer ({depth})")
    if fine("model.global_kernel.size"):
      need(m.global_kernel.size % 2 == 1,
           f"model.global_kernel.size={m.global_kernel.size} must be odd (a centred "
           "kernel)")
    need(not cfg.stacked.enabled, "stacked.enabled does not apply to model.kind=kernel")
    if fine("model.dropout"):
      need(m.dropout == 0, f"model.dropout={show(m.dropout)} must be 0 for "
           "model.kind=kernel (the full-batch trainer has no dropout)")
    need(not m.tied, "model.tied does not apply to model.kind=kernel")
    if m.global_kernel.enabled:
      need(not cfg.preprocess.scale and cfg.preprocess.bias == "none",
           "model.global_kernel.enabled convolves the ratings as given: it needs "
           "preprocess.scale=False and preprocess.bias=none")
  elif m.global_kernel.enabled:
    need(False, "model.global_kernel.enabled needs model.kind=kernel")
  need(m.activation in ACTIVATIONS,
       f"model.activation={m.activation!r} must be one of {sorted(ACTIVATIONS)}")
  need(m.kernel_init in INITIALIZERS,
       f"model.kernel_init={m.kernel_init!r} must be one of {sorted(INITIALIZERS)}")
  need(m.input_path in INPUT_PATHS,
       f"model.input_path={m.input_path!r} must be one of {list(INPUT_PATHS)}")
  need(m.compute_dtype in COMPUTE_DTYPES,
       f"model.compute_dtype={m.compute_dtype!r} must be one of {sorted(COMPUTE_DTYPES)}")
  need(o.name in optim.OPTIMIZERS, f"optim.name={o.name!r} must be one of {optim.OPTIMIZERS}")
  need(o.schedule in optim.SCHEDULES,
       f"optim.schedule={o.schedule!r} must be one of {optim.SCHEDULES}")
  # An exponential rate above 1 grows without bound; a multistep factor above 1 is a
  # deliberate step up at the epochs named (a warm-up), so it stays allowed.
  if fine("optim.decay_rate") and o.schedule == "exponential":
    need(o.decay_rate <= 1, f"optim.decay_rate={show(o.decay_rate)} must be in (0, 1] "
         "for optim.schedule=exponential (1: no decay; above 1 the rate grows every "
         "epoch)")
  need(t.on_nan in ("stop", "rollback"), f"train.on_nan={t.on_nan!r} must be stop or rollback")
  biases = preprocess.BIASES + ("auto",)
  need(cfg.preprocess.bias in biases,
       f"preprocess.bias={cfg.preprocess.bias!r} must be one of {biases}")
  _check_noise_and_loss(cfg.noise, cfg.loss, "noise.", "loss.", fine, need)
  for stage in ("outer", "inner"):
    st = cfg.stacked[stage]
    _check_noise_and_loss(st, st, f"stacked.{stage}.", f"stacked.{stage}.", fine, need)
  if problems:
    raise ConfigError("; ".join(problems))


def _check_noise_and_loss(noise, loss, noise_prefix: str, loss_prefix: str,
                          fine: Callable[..., bool], need: Callable[[bool, str], None]):
  """The corruption fractions' sum and the loss weights' pair (each field alone is in
  DOMAINS)."""
  shares = [noise_prefix + n for n in ("masking", "salt_pepper", "gaussian")]
  if fine(*shares):
    need(noise.masking + noise.salt_pepper + noise.gaussian <= 1.0,
         f"{shares[0]} + {shares[1]} + {shares[2]} must be <= 1")
  a, b = loss_prefix + "alpha", loss_prefix + "beta"
  if fine(a, b):
    need(loss.alpha + loss.beta > 0, f"{a}={show(loss.alpha)} and {b}={show(loss.beta)} "
         "must not both be 0")
