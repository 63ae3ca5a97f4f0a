"""Search spaces, by trainer: which config fields the tuner samples, and over what.

A space is a function `fn(cfg) -> list[Param]` of the config being tuned (ranges may
follow its values: the learning rate is searched a decade either side of the
config's), registered under a trainer's name (`training.registry.name_of(cfg)`:
"autoencoder", "stacked", "svd", "als", ...):

  spaces.register_space("mykind", lambda cfg: [
      spaces.log_float("model.lambda_2", 1e-4, 1e2),
      spaces.int_range("model.kernel_dim", 2, 16)])

Each `Param` names the config field it sets; a field fixed on the command line
(`--config.optim.learning_rate=0.003`) is left out of the search. The built-in spaces
are listed in docs/tuning.md.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Callable, Iterable, Sequence

from autorec_jax.config.checks import ConfigError
from autorec_jax.config.domains import MISSING, get, show
from autorec_jax.training import registry as trainer_registry


@dataclasses.dataclass(frozen=True)
class Param:
  """One searched hyperparameter.

  Attributes:
    name: Optuna's name for it (and the column of the trials table).
    field: the dotted config field it sets.
    kind: "float", "int" or "choice".
    low, high, log: the range of a float or int (log: sampled log-uniformly).
    choices: the values of a choice.
    to_field: the field's value for a sampled value (None: the value itself).
    from_field: the sampled value a field's value stands for (None: the value
      itself), used to start the search from the config as given.
  """

  name: str
  field: str
  kind: str
  low: float | None = None
  high: float | None = None
  log: bool = False
  choices: tuple = ()
  to_field: Callable[[Any], Any] | None = None
  from_field: Callable[[Any], Any] | None = None

  def suggest(self, trial) -> Any:
    """Samples the value from an Optuna trial."""
    if self.kind == "float":
      return trial.suggest_float(self.name, self.low, self.high, log=self.log)
    if self.kind == "int":
      return trial.suggest_int(self.name, int(self.low), int(self.high), log=self.log)
    return trial.suggest_categorical(self.name, list(self.choices))

  def field_value(self, value: Any) -> Any:
    return value if self.to_field is None else self.to_field(value)

  def value_of(self, cfg) -> Any:
    """The sampled value that stands for `cfg`'s field, or None when it lies outside
    the space."""
    value = get(cfg, self.field)
    if value is MISSING:
      return None
    value = value if self.from_field is None else self.from_field(value)
    if self.kind == "choice":
      return value if value in self.choices else None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
      return None
    if self.kind == "int" and int(value) != value:
      return None
    return value if self.low <= value <= self.high else None

  def describe(self) -> str:
    """`log-uniform in [0.0003, 0.03]`, `int in [125, 1000]`, `one of item, user`."""
    if self.kind == "choice":
      return "one of " + ", ".join(show(c) if not isinstance(c, str) else c
                                   for c in self.choices)
    what = {"float": "uniform", "int": "int"}[self.kind]
    if self.log:
      what = "log-uniform" if self.kind == "float" else "int, log-uniform,"
    return f"{what} in [{self.low:g}, {self.high:g}]"


def log_float(field: str, low: float, high: float, name: str | None = None) -> Param:
  return Param(name or field, field, "float", low=float(low), high=float(high), log=True)


def uniform_float(field: str, low: float, high: float, name: str | None = None) -> Param:
  return Param(name or field, field, "float", low=float(low), high=float(high))


def int_range(field: str, low: int, high: int, *, log: bool = False,
              name: str | None = None) -> Param:
  return Param(name or field, field, "int", low=int(low), high=int(high), log=log)


def choice(field: str, choices: Sequence, name: str | None = None) -> Param:
  return Param(name or field, field, "choice", choices=tuple(choices))


Space = Callable[[Any], list[Param]]
_SPACES: dict[str, Space] = {}


def register_space(name: str, fn: Space) -> None:
  """Makes `fn(cfg) -> [Param]` the search space of configs whose trainer is `name`."""
  _SPACES[name] = fn


def names() -> list[str]:
  return sorted(_SPACES)


def space_for(cfg) -> tuple[str, list[Param]]:
  """(the trainer's name, its space for `cfg`); ConfigError when it has none."""
  name = trainer_registry.name_of(cfg)
  if name not in _SPACES:
    raise ConfigError(f"no search space for model.kind={cfg.model.kind!r} (trainer {name!r}); "
                      f"known: {', '.join(names())}; a model family adds one with "
                      "autorec_jax.tuning.spaces.register_space")
  params = _SPACES[name](cfg)
  seen = [p.name for p in params]
  if len(set(seen)) != len(seen):
    raise ValueError(f"the search space of {name!r} names a parameter twice: {seen}")
  return name, params


def is_fixed(field: str, fixed: Iterable[str]) -> bool:
  """Whether an override in `fixed` sets `field` (or a group holding it, or a part)."""
  return any(f == field or field.startswith(f + ".") or f.startswith(field + ".")
             for f in fixed)


def searched(params: list[Param], fixed: Iterable[str]) -> list[Param]:
  """The params whose fields no override fixes."""
  fixed = list(fixed)
  return [p for p in params if not is_fixed(p.field, fixed)]


def sample(trial, params: list[Param]) -> dict[str, Any]:
  """{field: value} for one trial, each param sampled from `trial`."""
  return {p.field: p.field_value(p.suggest(trial)) for p in params}


def baseline(cfg, params: list[Param]) -> dict[str, Any]:
  """{param name: value} standing for `cfg` itself, for every param whose value
  lies in the space (the others are sampled)."""
  out = {}
  for p in params:
    value = p.value_of(cfg)
    if value is not None:
      out[p.name] = value
  return out


def apply(cfg, values: dict[str, Any]):
  """A copy of `cfg` with the dotted fields of `values` set."""
  out = cfg.copy_and_resolve_references()
  with out.unlocked():
    for field, value in values.items():
      *groups, leaf = field.split(".")
      node = out
      for g in groups:
        node = node[g]
      node[leaf] = value
  return out


# --- The built-in spaces. ---

def _around(value: float, factor: float, default: tuple[float, float]) -> tuple[float, float]:
  """[value / factor, value * factor], or `default` when value is not > 0."""
  if isinstance(value, (int, float)) and math.isfinite(value) and value > 0:
    return value / factor, value * factor
  return default


def _epochs(cfg) -> Param:
  n = int(cfg.train.num_epochs)
  return int_range("train.num_epochs", max(1, n // 2), max(2, 2 * n))


def _width(cfg) -> list[Param]:
  """The first layer's width, from a quarter to twice the config's; deeper layers keep
  their ratio to it. Not searched with model.hidden_fractions (the widths follow the
  input width there)."""
  if tuple(cfg.model.hidden_fractions):
    return []
  hidden = tuple(int(h) for h in cfg.model.hidden)
  first = hidden[0]

  def to_field(width: int) -> tuple:
    return tuple(max(1, round(h * width / first)) for h in hidden)

  def from_field(value) -> int | None:
    return int(value[0]) if len(value) == len(hidden) and to_field(value[0]) == tuple(
        value) else None

  return [Param("model.hidden[0]", "model.hidden", "int", low=max(1, first // 4),
                high=max(2, first * 2), log=True, to_field=to_field, from_field=from_field)]


def autoencoder_space(cfg) -> list[Param]:
  """Width, learning rate and weight decay (a decade either side of the config's),
  dropout, [-1, 1] scaling (off, on, or "by scale": unset, decided by the rating
  scale), orientation and the number of epochs. `preprocess.bias` is not searched:
  its default (`auto`) is decided on the data before the search (`study.tune`), and
  a short search does better with one choice fewer."""
  lr = _around(cfg.optim.learning_rate, 10.0, (1e-4, 1e-2))
  wd = _around(cfg.optim.weight_decay, 10.0, (1e-6, 1e-2))
  return [*_width(cfg),
          log_float("optim.learning_rate", *lr),
          log_float("optim.weight_decay", *wd),
          uniform_float("model.dropout", 0.0, 0.8),
          Param("preprocess.scale", "preprocess.scale", "choice",
                choices=("by scale", False, True),
                to_field=lambda v: None if v == "by scale" else v,
                from_field=lambda v: "by scale" if v is None else v),
          choice("model.orientation", ("item", "user")),
          _epochs(cfg)]


def svd_space(cfg) -> list[Param]:
  """Rank (a third to three times the config's), lambda and learning rate (a decade
  either side), epochs."""
  rank = int(cfg.model.rank)
  return [int_range("model.rank", max(1, rank // 3), max(2, rank * 3), log=True),
          log_float("model.reg", *_around(cfg.model.reg, 10.0, (1e-4, 0.3))),
          log_float("optim.learning_rate", *_around(cfg.optim.learning_rate, 10.0,
                                                    (1e-3, 0.1))),
          _epochs(cfg)]


def als_space(cfg) -> list[Param]:
  """Rank, lambda and iterations (ALS-WR has no learning rate)."""
  return [p for p in svd_space(cfg) if p.field != "optim.learning_rate"]


def kernel_space(cfg) -> list[Param]:
  """The kernel networks: width, lambda_2 and lambda_s (a factor 4 either side of the
  config's), the kernel's dimension, and the number of L-BFGS rounds (GLocal-K's
  fine-tuning rounds)."""
  return [*_width(cfg),
          log_float("model.kernel.lambda_2", *_around(cfg.model.kernel.lambda_2, 4.0,
                                                      (5.0, 300.0))),
          log_float("model.kernel.lambda_s", *_around(cfg.model.kernel.lambda_s, 4.0,
                                                      (1e-3, 0.1))),
          int_range("model.kernel.dim", 2, 10),
          _epochs(cfg)]


register_space("autoencoder", autoencoder_space)
register_space("kernel", kernel_space)
register_space("stacked", autoencoder_space)
register_space("svd", svd_space)
register_space("als", als_space)
