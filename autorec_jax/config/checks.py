"""Checks a resolved config before any work, with one clear message per problem.

Every numeric, bool and tuple field of `base_config()` has its domain in `DOMAINS`
(field -> domain): its type (an int is not a bool, a bool is not an int), NaN and
infinity refused for every float, and its range with what "off" means where a value
turns a feature off. `validate` then checks what no single field can: choices that
live in registries, sums and pairs of fields, and `data.*` settings that would be
silently ignored by another one (a predefined test part and a random test fraction,
folds and a test file, ...). All problems are reported at once, joined by "; ", each
naming the field as the `--config.group.field=value` flag a user passes.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from typing import Any, Callable

from autorec_jax.config import schema
from autorec_jax.data import preprocess
from autorec_jax.models import registry as model_registry
from autorec_jax.models.autoencoder import ACTIVATIONS, COMPUTE_DTYPES, INITIALIZERS
from autorec_jax.models.sparse import INPUT_PATHS
from autorec_jax.training import optim

# Counts (epochs, batch rows, steps) beyond this are refused: train steps are counted
# in int32 on the device, and no run comes near it.
COUNT_MAX = 2**31 - 1
# numpy and JAX seeds: JAX keeps 32 bits of a seed (2**32 would silently be seed 0).
SEED_MAX = 2**32 - 1


class ConfigError(ValueError):
  """A config value that cannot work; the message names the field."""


def _show(value: Any) -> str:
  """A value as the user would type it (numbers plainly, strings quoted)."""
  if isinstance(value, bool) or value is None:
    return str(value)
  if isinstance(value, numbers.Integral):
    return str(int(value))
  if isinstance(value, numbers.Real):
    return str(float(value))
  if isinstance(value, (tuple, list)):
    inner = ", ".join(_show(v) for v in value)
    return f"({inner},)" if len(value) == 1 else f"({inner})"
  return repr(value)


def _is_int(value: Any) -> bool:
  return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
  return isinstance(value, numbers.Real) and not isinstance(value, bool)


@dataclasses.dataclass(frozen=True)
class Number:
  """An int or a float field: its range, and what None or an "off" value means.

  Attributes:
    lo, hi: the bounds (None: unbounded); lo_open, hi_open: whether they are excluded.
    integer: an int (a float or a bool is refused), else a finite real number (an
      int is fine, a bool is not).
    none: None is allowed and means this (e.g. "no clipping").
    note: appended to the message, e.g. "(0: only at epoch ends)".
    cap: ints only, a technical maximum reported on its own ("must be <= cap").
  """

  lo: float | None = None
  hi: float | None = None
  lo_open: bool = False
  hi_open: bool = False
  integer: bool = False
  none: str | None = None
  note: str = ""
  cap: int | None = None

  def describe(self) -> str:
    """The range as a message says it: "> 0", ">= 1", "in [0, 1)"."""
    if self.lo is not None and self.hi is not None:
      return (f"in {'(' if self.lo_open else '['}{_show(self.lo)}, "
              f"{_show(self.hi)}{')' if self.hi_open else ']'}")
    if self.lo is not None:
      return f"{'>' if self.lo_open else '>='} {_show(self.lo)}"
    if self.hi is not None:
      return f"{'<' if self.hi_open else '<='} {_show(self.hi)}"
    return ""

  def _in_range(self, x) -> bool:
    # Written so that NaN fails every bound (`not x >= lo`, never `x < lo`).
    if self.lo is not None and not (x > self.lo if self.lo_open else x >= self.lo):
      return False
    if self.hi is not None and not (x < self.hi if self.hi_open else x <= self.hi):
      return False
    return True

  def problem(self, name: str, value: Any) -> str | None:
    """None when `value` is in the domain, else the one-line message."""
    def must(*words: str) -> str:
      extra = (f"(or None: {self.none})" if self.none else "", self.note)
      return f"{name}={_show(value)} must be " + " ".join(
          w for w in (*words, self.describe(), *extra) if w)

    if value is None:
      return None if self.none else must("an int" if self.integer else "a number")
    if self.integer and not _is_int(value):
      return must("an int")
    if not self.integer and not _is_number(value):
      return must("a number")
    if not self.integer and not math.isfinite(value):
      return must("a finite number")
    if not self._in_range(value):
      return must()
    if self.cap is not None and value > self.cap:
      return f"{name}={_show(value)} must be <= {self.cap}"
    return None


@dataclasses.dataclass(frozen=True)
class Flag:
  """A bool field (an int such as 1 is refused: it is not the same value)."""

  def problem(self, name: str, value: Any) -> str | None:
    if isinstance(value, bool):
      return None
    return f"{name}={_show(value)} must be True or False"


@dataclasses.dataclass(frozen=True)
class Numbers:
  """A tuple of numbers, each in `each`'s domain; `non_empty` refuses ()."""

  each: Number
  non_empty: bool = False
  what: str = ""  # the message instead of the generic one, e.g. "positive widths"

  def problem(self, name: str, value: Any) -> str | None:
    ok = (isinstance(value, (tuple, list)) and (len(value) > 0 or not self.non_empty) and
          all(self.each.problem(name, v) is None for v in value))
    if ok:
      return None
    if self.what:
      return f"{name}={_show(value)} must be {self.what}"
    kind = "ints" if self.each.integer else "finite numbers"
    return (f"{name}={_show(value)} must be a {'non-empty ' if self.non_empty else ''}"
            f"tuple of {kind} {self.each.describe()}"
            + (f" {self.each.note}" if self.each.note else ""))


def _count(lo: int, note: str = "") -> Number:
  return Number(lo=lo, integer=True, note=note, cap=COUNT_MAX)


_SEED = Number(lo=0, hi=SEED_MAX, integer=True,
               note="(numpy and JAX seeds are 32-bit: 2**32 - 1 at most)")
_SHARE = Number(lo=0, hi=1, note="(0: none)")  # noise fractions: [0, 1]
_POSITIVE = Number(lo=0, lo_open=True)  # > 0
_NON_NEGATIVE = Number(lo=0)  # >= 0
_DECAY = Number(lo=0, hi=1, hi_open=True)  # betas, momentum: [0, 1)


def _stage_domains(stage: str) -> dict:
  p = f"stacked.{stage}."
  return {
      p + "num_epochs": _count(1),
      p + "learning_rate": _POSITIVE,
      p + "decay_rate": _POSITIVE,
      p + "weight_decay": Number(lo=0, note="(0: none)"),
      p + "alpha": _NON_NEGATIVE,
      p + "beta": _NON_NEGATIVE,
      p + "masking": _SHARE,
      p + "salt_pepper": _SHARE,
      p + "gaussian": _SHARE,
      p + "gaussian_std": _NON_NEGATIVE,
  }


# Every numeric, bool and tuple field of `base_config()` and its domain. The string
# fields are checked against their choices in `validate` (model.*, optim.*, train.*)
# or when the data is read (data.*: `autorec_jax.data.datasets`).
DOMAINS: dict[str, Number | Flag | Numbers] = {
    "seed": _SEED,
    "data.download": Flag(),
    "data.csv_columns": Numbers(Number(lo=0, integer=True), what=(
        "a tuple of 3 or 4 distinct field indices (ints >= 0): user, item, "
        "rating[, timestamp]")),
    "data.csv_string_ids": Flag(),
    "data.rating_min": Number(none="the data set's own"),
    "data.rating_max": Number(none="the data set's own"),
    "data.seed": _SEED,
    "data.test_fraction": Number(lo=0, hi=1, hi_open=True, note="(0: no test part)"),
    "data.num_folds": Number(lo=0, integer=True, cap=COUNT_MAX,  # not 1: validate
                             note="(0: random split, else >= 2 folds)"),
    "data.fold": Number(lo=0, integer=True, cap=COUNT_MAX),  # < num_folds: validate
    "data.valid_fraction": Number(lo=0, hi=1, hi_open=True, note="(0: no validation part)"),
    "model.hidden": Numbers(Number(lo=1, integer=True, cap=COUNT_MAX), non_empty=True,
                            what="a non-empty tuple of positive widths, e.g. "
                                 "'(512,512,1024)'"),
    "model.hidden_fractions": Numbers(Number(lo=0, hi=1, lo_open=True), what=(
        "a tuple of fractions in (0, 1] (empty: use model.hidden)")),
    "model.output_activation": Flag(),
    "model.dropout": Number(lo=0, hi=1, hi_open=True, note="(0: none)"),
    "model.tied": Flag(),
    "model.rank": _count(1),
    "model.reg": Number(lo=0, note="(0: none)"),
    "model.use_biases": Flag(),
    "preprocess.scale": Flag(),
    "noise.masking": _SHARE,
    "noise.salt_pepper": _SHARE,
    "noise.gaussian": _SHARE,
    "noise.gaussian_std": _NON_NEGATIVE,
    "loss.alpha": _NON_NEGATIVE,
    "loss.beta": _NON_NEGATIVE,
    "optim.learning_rate": _POSITIVE,
    "optim.momentum": Number(lo=0, hi=1, hi_open=True, note="(0: none)"),
    "optim.nesterov": Flag(),
    "optim.beta1": _DECAY,
    "optim.beta2": _DECAY,
    "optim.eps": _POSITIVE,
    "optim.weight_decay": Number(lo=0, note="(0: none)"),
    "optim.decay_rate": _POSITIVE,  # (0, 1] for exponential: validate
    "optim.decay_epochs": Numbers(Number(lo=0, integer=True, cap=COUNT_MAX)),
    "optim.grad_clip_norm": Number(lo=0, lo_open=True, none="no clipping"),
    "optim.fused": Flag(),
    "stacked.enabled": Flag(),
    **_stage_domains("outer"),
    **_stage_domains("inner"),
    "train.num_epochs": _count(1),
    "train.batch_size": _count(1),
    "train.refeed_steps": _count(0, "(0: none)"),
    "train.eval_every_epochs": _count(1),
    "train.log_every_steps": _count(1),
    "train.prefetch": _count(0, "(0: none)"),
    "train.progress_bar": Flag(),
    "train.rollback_lr_factor": Number(lo=0, hi=1, lo_open=True, hi_open=True),
    "train.max_rollbacks": _count(0, "(0: never roll back)"),
    "ckpt.every_steps": _count(0, "(0: only at epoch ends)"),
    "eval.batch_size": _count(1),
    "eval.clip_predictions": Flag(),
    "eval.ranking_ks": Numbers(Number(lo=1, integer=True, cap=COUNT_MAX,
                                      note="(empty: no ranking metrics)")),
    "eval.relevance_threshold": Number(none="3/4 up the rating scale"),
}

_MISSING = object()


def _get(cfg, dotted: str) -> Any:
  """The value of a dotted field, or _MISSING when the config lacks it."""
  node = cfg
  for key in dotted.split("."):
    try:
      node = node[key]
    except (KeyError, TypeError, AttributeError):
      return _MISSING
  return node


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
        problems.append(f"data.{field}={_show(getattr(d, field))} applies to "
                        f"data.name=csv only, not data.name={name!r}; leave it unset")
  if name != "netflix" and changed("time_split"):
    problems.append(f"data.time_split={d.time_split!r} applies to data.name=netflix only, "
                    f"not data.name={name!r}; leave it unset")
  if name == "netflix":
    for field in _NETFLIX_UNUSED:
      if changed(field, zero_ok=field in ("test_fraction", "valid_fraction")):
        problems.append(
            f"data.{field}={_show(getattr(d, field))} is ignored with data.name=netflix "
            "(a converted time split has its own train, valid and test parts and the "
            "1..5 scale); leave it unset")
    return problems
  if d.test_path is not None:
    if d.num_folds:
      problems.append(f"data.num_folds={d.num_folds} and data.test_path={d.test_path!r} "
                      "both choose the test part; set only one")
    if changed("test_fraction", zero_ok=True):
      problems.append(f"data.test_fraction={_show(d.test_fraction)} and "
                      f"data.test_path={d.test_path!r} both choose the test part; set only "
                      "one")
  elif d.num_folds and changed("test_fraction", zero_ok=False):
    problems.append(f"data.test_fraction={_show(d.test_fraction)} and "
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
    value = _get(cfg, field)
    if value is _MISSING:
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
    need(d.rating_min < d.rating_max, f"data.rating_min={_show(d.rating_min)} must be < "
         f"data.rating_max={_show(d.rating_max)}")
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
    need(o.decay_rate <= 1, f"optim.decay_rate={_show(o.decay_rate)} must be in (0, 1] "
         "for optim.schedule=exponential (1: no decay; above 1 the rate grows every "
         "epoch)")
  need(t.on_nan in ("stop", "rollback"), f"train.on_nan={t.on_nan!r} must be stop or rollback")
  need(cfg.preprocess.bias in preprocess.BIASES,
       f"preprocess.bias={cfg.preprocess.bias!r} must be one of {preprocess.BIASES}")
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
    need(loss.alpha + loss.beta > 0, f"{a}={_show(loss.alpha)} and {b}={_show(loss.beta)} "
         "must not both be 0")
