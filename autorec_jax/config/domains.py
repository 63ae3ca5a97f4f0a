"""The domain of every numeric, bool and tuple config field (`DOMAINS`: field -> domain).

A domain checks one value and says what is wrong in one line: its type (an int field
refuses a bool or a float, a bool field refuses an int, a float field refuses a
non-number), NaN and infinity for every float (the range tests are written so that
NaN fails them), its range, and what None or an "off" value means where there is
one. `autorec_jax.config.checks.validate` applies the table, then checks what no
single field can (choices, sums, pairs of fields).
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from typing import Any

# Counts (epochs, batch rows, steps) beyond this are refused: train steps are counted
# in int32 on the device, and no run comes near it.
COUNT_MAX = 2**31 - 1
# numpy and JAX seeds: JAX keeps 32 bits of a seed (2**32 would silently be seed 0).
SEED_MAX = 2**32 - 1


def show(value: Any) -> str:
  """A value as the user would type it (numbers plainly, strings quoted)."""
  if isinstance(value, bool) or value is None:
    return str(value)
  if isinstance(value, numbers.Integral):
    return str(int(value))
  if isinstance(value, numbers.Real):
    return str(float(value))
  if isinstance(value, (tuple, list)):
    inner = ", ".join(show(v) for v in value)
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
      return (f"in {'(' if self.lo_open else '['}{show(self.lo)}, "
              f"{show(self.hi)}{')' if self.hi_open else ']'}")
    if self.lo is not None:
      return f"{'>' if self.lo_open else '>='} {show(self.lo)}"
    if self.hi is not None:
      return f"{'<' if self.hi_open else '<='} {show(self.hi)}"
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
      return f"{name}={show(value)} must be " + " ".join(
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
      return f"{name}={show(value)} must be <= {self.cap}"
    return None


@dataclasses.dataclass(frozen=True)
class Flag:
  """A bool field (an int such as 1 is refused: it is not the same value); `none`:
  None is allowed and means this (e.g. "decided by the data")."""

  none: str | None = None

  def problem(self, name: str, value: Any) -> str | None:
    if isinstance(value, bool) or (value is None and self.none):
      return None
    extra = f" (or None: {self.none})" if self.none else ""
    return f"{name}={show(value)} must be True or False{extra}"


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
      return f"{name}={show(value)} must be {self.what}"
    kind = "ints" if self.each.integer else "finite numbers"
    return (f"{name}={show(value)} must be a {'non-empty ' if self.non_empty else ''}"
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
    "model.kernel.dim": _count(0, "(0: plain dense layers)"),
    "model.kernel.layers": Numbers(Number(lo=0, integer=True, cap=COUNT_MAX),
                                   what="a tuple of layer indices (ints >= 0; empty: all)"),
    "model.kernel.lambda_2": Number(lo=0, note="(0: none)"),
    "model.kernel.lambda_s": Number(lo=0, note="(0: none)"),
    "model.kernel.scale_lambdas": Flag(),
    "model.global_kernel.enabled": Flag(),
    "model.global_kernel.size": _count(1),
    "model.global_kernel.dot_scale": _POSITIVE,
    "lbfgs.iterations": _count(1),
    "lbfgs.memory": _count(1),
    "lbfgs.pretrain_rounds": _count(1),
    "lbfgs.pretrain_iterations": _count(1),
    "model.rank": _count(1),
    "model.reg": Number(lo=0, note="(0: none)", none="scaled with the ratings per user "
                        "and item"),
    "model.use_biases": Flag(),
    "preprocess.scale": Flag(none="decided by the rating scale"),
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
    "optim.weight_decay": Number(lo=0, note="(0: none)",
                                 none="by the data (training.data_defaults)"),
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
    "train.patience": _count(0, "(0: no early stopping)"),
    "ckpt.every_steps": _count(0, "(0: only at epoch ends)"),
    "ckpt.every_secs": Number(lo=0, note="(0: after every epoch)"),
    "eval.batch_size": _count(1),
    "eval.clip_predictions": Flag(),
    "eval.ranking_ks": Numbers(Number(lo=1, integer=True, cap=COUNT_MAX,
                                      note="(empty: no ranking metrics)")),
    "eval.relevance_threshold": Number(none="3/4 up the rating scale"),
    "eval.ranking_every_epochs": _count(0, "(0: once, on the best checkpoint)"),
}

MISSING = object()


def get(cfg, dotted: str) -> Any:
  """The value of a dotted field, or MISSING when the config lacks it."""
  node = cfg
  for key in dotted.split("."):
    try:
      node = node[key]
    except (KeyError, TypeError, AttributeError):
      return MISSING
  return node
