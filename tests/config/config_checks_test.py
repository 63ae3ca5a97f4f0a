import pytest

from autorec_jax.config import checks as config_checks
from configs import movielens_1m


@pytest.mark.parametrize("field,value,message", [
    ("model.dropout", 1.0, "model.dropout=1.0 must be in [0, 1)"),
    ("optim.learning_rate", -0.1, "optim.learning_rate=-0.1 must be > 0"),
    ("model.hidden", (), "model.hidden=() must be a non-empty tuple"),
    ("model.hidden", ("abc",), "model.hidden=('abc',) must be a non-empty tuple"),
    ("model.orientation", "both", "model.orientation='both'"),
    ("model.activation", "gelu", "model.activation='gelu' must be one of"),
    ("data.test_fraction", 1.0, "data.test_fraction=1.0"),
    ("data.num_folds", 1, "data.num_folds=1"),
    ("train.refeed_steps", -1, "train.refeed_steps=-1"),
    ("optim.name", "lbfgs", "optim.name='lbfgs'"),
])
def test_impossible_values_name_the_field(field, value, message):
  cfg = movielens_1m.get_config()
  group, name = field.split(".")
  setattr(cfg[group], name, value)
  with pytest.raises(config_checks.ConfigError) as err:
    config_checks.validate(cfg)
  assert message in str(err.value)


def test_the_shipped_configs_are_valid():
  for variant in ("item", "user", "tiny"):
    config_checks.validate(movielens_1m.get_config(variant))


# ----------------------------------------------------------------------------------------
# Every field's domain (autorec_jax/config/checks.py DOMAINS).

import math  # noqa: E402

from ml_collections import config_dict  # noqa: E402

from autorec_jax.config import domains, schema  # noqa: E402


def _leaves(cfg, prefix=""):
  """(dotted name, value, declared type) of every non-group field."""
  for key in cfg.keys():
    ref = cfg.get_ref(key)
    value = cfg[key]
    if isinstance(value, config_dict.ConfigDict):
      yield from _leaves(value, f"{prefix}{key}.")
    else:
      yield f"{prefix}{key}", value, ref.get_type()


def _with(overrides, variant="tiny"):
  """The tiny config with `overrides` ({dotted: value}) set past ml_collections' type
  casts (as a Python caller or a config file could)."""
  cfg = config_dict.ConfigDict(movielens_1m.get_config(variant).to_dict(), type_safe=False)
  for dotted, value in overrides.items():
    *groups, name = dotted.split(".")
    node = cfg
    for g in groups:
      node = node[g]
    setattr(node, name, value)
  return cfg


def _problem(overrides, variant="tiny") -> str:
  with pytest.raises(config_checks.ConfigError) as err:
    config_checks.validate(_with(overrides, variant))
  return str(err.value)


def test_every_numeric_bool_and_tuple_field_has_a_domain():
  kinds = (int, float, bool, tuple)
  need = {name for name, _, typ in _leaves(schema.base_config()) if typ in kinds}
  missing = sorted(need - set(domains.DOMAINS))
  assert not missing, f"fields without a domain in config/domains.py DOMAINS: {missing}"
  assert set(domains.DOMAINS) <= {name for name, _, _ in _leaves(schema.base_config())}


NUMBER_FIELDS = [f for f, d in domains.DOMAINS.items()
                 if isinstance(d, domains.Number)]


@pytest.mark.parametrize("field", NUMBER_FIELDS)
def test_every_number_refuses_nan_inf_and_bools_naming_the_field(field):
  domain = domains.DOMAINS[field]
  if domain.integer:  # every int field has a lower bound and a maximum
    bad = [True, 1.5, -10**30, 10**30]
  else:  # (a bool given to a float field becomes 1.0 in ml_collections)
    bad = [math.nan, math.inf, -math.inf]
  for value in bad:
    message = _problem({field: value})
    assert message.startswith(f"{field}=") or f"; {field}=" in message, (value, message)
    assert "\n" not in message


@pytest.mark.parametrize("field", [f for f, d in domains.DOMAINS.items()
                                   if isinstance(d, domains.Flag)])
def test_every_bool_refuses_an_int(field):
  assert f"{field}=1 must be True or False" in _problem({field: 1})


@pytest.mark.parametrize("overrides,message", [
    # The gradient's sign flipped by a negative clip norm (trained uphill); 0 is no
    # longer a silent "off": None is.
    ({"optim.grad_clip_norm": -1.0},
     "optim.grad_clip_norm=-1.0 must be > 0 (or None: no clipping)"),
    ({"optim.grad_clip_norm": 0.0}, "optim.grad_clip_norm=0.0 must be > 0"),
    ({"optim.grad_clip_norm": math.nan}, "optim.grad_clip_norm=nan must be a finite number"),
    ({"optim.learning_rate": math.inf}, "optim.learning_rate=inf must be a finite number > 0"),
    ({"optim.learning_rate": math.nan}, "optim.learning_rate=nan must be a finite number > 0"),
    ({"optim.beta1": 1.0}, "optim.beta1=1.0 must be in [0, 1)"),
    ({"optim.beta2": -0.1}, "optim.beta2=-0.1 must be in [0, 1)"),
    ({"optim.eps": 0.0}, "optim.eps=0.0 must be > 0"),
    ({"optim.weight_decay": -1e-4}, "optim.weight_decay=-0.0001 must be >= 0"),
    ({"optim.decay_rate": 1.5}, "optim.decay_rate=1.5 must be in (0, 1] for "
     "optim.schedule=exponential"),
    ({"optim.decay_epochs": (-1,)}, "optim.decay_epochs=(-1,) must be a tuple of ints >= 0"),
    ({"noise.gaussian_std": math.inf}, "noise.gaussian_std=inf must be a finite number >= 0"),
    ({"noise.masking": math.nan}, "noise.masking=nan must be a finite number in [0, 1]"),
    ({"loss.alpha": 0.0, "loss.beta": 0.0}, "loss.alpha=0.0 and loss.beta=0.0 must not both"),
    ({"model.hidden_fractions": (0.5, 0.0)}, "model.hidden_fractions=(0.5, 0.0) must be a "
     "tuple of fractions in (0, 1]"),
    ({"model.hidden_fractions": ("a",)}, "model.hidden_fractions=('a',) must be"),
    ({"model.rank": 0}, "model.rank=0 must be >= 1"),
    ({"model.reg": math.nan}, "model.reg=nan must be a finite number >= 0"),
    ({"train.num_epochs": True}, "train.num_epochs=True must be an int >= 1"),
    ({"train.batch_size": 10**12}, "train.batch_size=1000000000000 must be <= 2147483647"),
    ({"train.eval_every_epochs": 0}, "train.eval_every_epochs=0 must be >= 1"),
    ({"train.rollback_lr_factor": 1.0}, "train.rollback_lr_factor=1.0 must be in (0, 1)"),
    ({"ckpt.every_steps": -1}, "ckpt.every_steps=-1 must be >= 0 (0: only at epoch ends)"),
    ({"eval.ranking_ks": (0,)}, "eval.ranking_ks=(0,) must be a tuple of ints >= 1"),
    ({"eval.ranking_ks": (10, -5)}, "eval.ranking_ks=(10, -5) must be a tuple of ints >= 1"),
    ({"eval.ranking_ks": (2.5,)}, "eval.ranking_ks=(2.5,) must be a tuple of ints >= 1"),
    ({"eval.relevance_threshold": math.inf},
     "eval.relevance_threshold=inf must be a finite number (or None: 3/4 up"),
    ({"data.rating_min": 5.0, "data.rating_max": 1.0},
     "data.rating_min=5.0 must be < data.rating_max=1.0"),
    ({"data.rating_max": math.nan}, "data.rating_max=nan must be a finite number"),
    ({"data.fold": 3}, "data.fold=3 needs data.num_folds >= 2"),
    ({"data.num_folds": 5, "data.fold": 5}, "data.fold=5 must be in [0, data.num_folds=5)"),
    ({"stacked.outer.learning_rate": 0.0}, "stacked.outer.learning_rate=0.0 must be > 0"),
    ({"stacked.inner.gaussian": 0.6, "stacked.inner.masking": 0.6},
     "stacked.inner.masking + stacked.inner.salt_pepper + stacked.inner.gaussian must be"),
    ({"stacked.inner.num_epochs": 0}, "stacked.inner.num_epochs=0 must be >= 1"),
    ({"data.test_path": ""}, "data.test_path='' must name a file or folder (or be unset)"),
])
def test_out_of_domain_values_are_refused_with_the_field(overrides, message):
  assert message in _problem(overrides)


@pytest.mark.parametrize("field", ["seed", "data.seed"])
@pytest.mark.parametrize("value", [-1, 2**32, 2**64, 10**30])
def test_seeds_are_32_bit_and_name_their_field(field, value):
  message = _problem({field: value})
  assert message == (f"{field}={value} must be in [0, 4294967295] (numpy and JAX seeds are "
                     "32-bit: 2**32 - 1 at most)")


def test_the_largest_seed_is_accepted():
  config_checks.validate(_with({"seed": 2**32 - 1, "data.seed": 2**32 - 1}))


def test_off_values_are_accepted():
  config_checks.validate(_with({
      "optim.grad_clip_norm": None, "ckpt.every_steps": 0, "train.refeed_steps": 0,
      "train.prefetch": 0, "train.max_rollbacks": 0, "eval.ranking_ks": (),
      "data.test_fraction": 0.0, "data.valid_fraction": 0.0, "model.reg": 0.0,
      "optim.weight_decay": 0.0, "optim.momentum": 0.0, "model.dropout": 0.0,
      "eval.ranking_ks": ()}))
  config_checks.validate(_with({"optim.decay_rate": 3.0, "optim.schedule": "inverse_time"}))
  # multistep: a factor above 1 is a step up at the epochs named (a warm-up)
  config_checks.validate(_with({"optim.decay_rate": 10.0, "optim.schedule": "multistep"}))


def test_every_problem_is_reported_on_one_line():
  message = _problem({"optim.grad_clip_norm": -1.0, "seed": -1, "eval.ranking_ks": (0,)})
  assert "\n" not in message and message.count("; ") == 2


# ----------------------------------------------------------------------------------------
# data.* settings that would silently override each other.


@pytest.mark.parametrize("overrides,message", [
    ({"data.num_folds": 5, "data.test_path": "t.csv"},
     "data.num_folds=5 and data.test_path='t.csv' both choose the test part; set only one"),
    ({"data.test_fraction": 0.2, "data.test_path": "t.csv"},
     "data.test_fraction=0.2 and data.test_path='t.csv' both choose the test part"),
    ({"data.test_fraction": 0.2, "data.num_folds": 5},
     "data.test_fraction=0.2 and data.num_folds=5 both choose the test part"),
    ({"data.name": "netflix", "data.valid_fraction": 0.2},
     "data.valid_fraction=0.2 is ignored with data.name=netflix"),
    ({"data.name": "netflix", "data.test_path": "t.csv"},
     "data.test_path='t.csv' is ignored with data.name=netflix"),
    ({"data.name": "netflix", "data.num_folds": 10}, "data.num_folds=10 is ignored with"),
    ({"data.name": "netflix", "data.seed": 3}, "data.seed=3 is ignored with"),
    ({"data.name": "netflix", "data.rating_max": 10.0}, "data.rating_max=10.0 is ignored"),
    ({"data.csv_delimiter": ";"},
     "data.csv_delimiter=';' applies to data.name=csv only, not data.name='movielens_1m'"),
    ({"data.csv_columns": (0, 1, 2)}, "data.csv_columns=(0, 1, 2) applies to data.name=csv"),
    ({"data.name": "csv", "data.time_split": "3m"},
     "data.time_split='3m' applies to data.name=netflix only, not data.name='csv'"),
])
def test_split_settings_that_would_be_ignored_are_refused(overrides, message):
  assert message in _problem(overrides)


@pytest.mark.parametrize("overrides", [
    {"data.test_path": "t.csv"},  # the default test_fraction: nothing chosen twice
    {"data.test_path": "t.csv", "data.test_fraction": 0.0},
    {"data.num_folds": 5, "data.fold": 4, "data.valid_fraction": 0.2},
    {"data.name": "netflix", "data.valid_fraction": 0.0, "data.time_split": "3m"},
    {"data.name": "csv", "data.path": "r.csv", "data.csv_delimiter": ";",
     "data.csv_columns": (1, 0, 2)},
])
def test_compatible_split_settings_are_accepted(overrides):
  config_checks.validate(_with(overrides))
