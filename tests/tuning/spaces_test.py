"""Search spaces: each kind samples valid configs within its ranges; overrides fix."""

import optuna
import pytest

from autorec_jax.config import checks as config_checks
from autorec_jax.tuning import spaces
from configs import movielens_1m, strub_mary_2015

optuna.logging.set_verbosity(optuna.logging.WARNING)


def _sample(cfg, params, n=8, seed=0):
  study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed))
  out = []
  for _ in range(n):
    trial = study.ask()
    values = spaces.sample(trial, params)
    out.append((trial.params, values, spaces.apply(cfg, values)))
    study.tell(trial, 1.0)
  return out


def _in_range(p, value):
  if p.kind == "choice":
    return value in p.choices
  return p.low <= value <= p.high and (p.kind == "float" or isinstance(value, int))


@pytest.mark.parametrize("variant, kind, names", [
    ("item", "autoencoder", {"model.hidden[0]", "optim.learning_rate", "optim.weight_decay",
                             "model.dropout", "preprocess.scale", "model.orientation",
                             "train.num_epochs"}),
    ("user", "autoencoder", None),
    ("svd", "svd", {"model.rank", "model.reg", "optim.learning_rate", "train.num_epochs"}),
    ("als", "als", {"model.rank", "model.reg", "train.num_epochs"}),
    ("kernelnet", "kernel", {"model.hidden[0]", "model.kernel.lambda_2",
                             "model.kernel.lambda_s", "model.kernel.dim", "train.num_epochs"}),
    ("glocal_k", "kernel", None),
])
def test_each_kind_samples_valid_configs_in_its_ranges(variant, kind, names):
  cfg = movielens_1m.get_config(variant)
  if cfg.preprocess.bias == "auto":  # decided on the data before the search, as tune does
    with cfg.unlocked():
      cfg.preprocess.bias, cfg.optim.weight_decay = "none", 3e-4
  name, params = spaces.space_for(cfg)
  assert name == kind
  if names is not None:
    assert {p.name for p in params} == names
  for sampled, values, trial_cfg in _sample(cfg, params):
    config_checks.validate(trial_cfg)
    for p in params:
      assert _in_range(p, sampled[p.name]), (p, sampled[p.name])
    for field, value in values.items():
      node = trial_cfg
      for part in field.split("."):
        node = node[part]
      assert node == value
  # the shipped config lies inside its own space: the first trial is the config itself,
  # but for fields left unset to be decided by the data (model.reg), which are sampled
  base = set(spaces.baseline(cfg, params))
  unset = {p.name for p in params if spaces.get(cfg, p.field) is None} - base
  assert base == {p.name for p in params} - unset
  assert unset <= {"model.reg"}


def test_stacked_configs_keep_two_layers_in_proportion():
  cfg = strub_mary_2015.get_config("tiny")
  assert cfg.stacked.enabled and cfg.model.hidden_fractions
  name, params = spaces.space_for(cfg)
  assert name == "stacked"
  # widths given as fractions of the input width are not searched
  assert not any(p.field == "model.hidden" for p in params)
  with cfg.unlocked():
    cfg.model.hidden_fractions, cfg.model.hidden = (), (20, 10)
  _, params = spaces.space_for(cfg)
  for _, values, trial_cfg in _sample(cfg, params):
    assert len(trial_cfg.model.hidden) == 2
    config_checks.validate(trial_cfg)


def test_width_scales_deeper_layers_and_stands_for_the_config():
  cfg = movielens_1m.get_config("user")  # (256, 64)
  (width,) = [p for p in spaces.space_for(cfg)[1] if p.field == "model.hidden"]
  assert (width.low, width.high) == (64, 512)
  assert width.field_value(512) == (512, 128) and width.field_value(100) == (100, 25)
  assert width.value_of(cfg) == 256
  with cfg.unlocked():
    cfg.model.hidden = (256, 10)  # not a scaled copy of itself: outside the space
  assert width.value_of(cfg) is None


def test_overridden_fields_are_left_out():
  cfg = movielens_1m.get_config("item")
  _, params = spaces.space_for(cfg)
  kept = spaces.searched(params, ["model.orientation", "optim", "model.hidden"])
  assert {p.name for p in kept} == {"model.dropout", "preprocess.scale", "train.num_epochs"}


def test_ranges_follow_the_config_and_fall_back_when_it_is_zero():
  cfg = movielens_1m.get_config("item")
  with cfg.unlocked():
    cfg.optim.weight_decay = 0.0
  params = {p.name: p for p in spaces.space_for(cfg)[1]}
  lr, wd = params["optim.learning_rate"], params["optim.weight_decay"]
  assert (lr.low, lr.high) == pytest.approx((3e-4, 3e-2)) and lr.log
  assert (wd.low, wd.high) == (1e-6, 1e-2)
  assert "optim.weight_decay" not in spaces.baseline(cfg, list(params.values()))
  assert params["model.dropout"].describe() == "uniform in [0, 0.8]"
  assert params["model.orientation"].describe() == "one of item, user"


def test_a_kind_without_a_space_is_one_clear_line():
  cfg = movielens_1m.get_config("item")
  with cfg.unlocked():
    cfg.model.kind = "nope"
  with pytest.raises(config_checks.ConfigError, match=r"no search space for "
                     r"model.kind='nope'.*known: als, autoencoder, kernel, stacked, svd.*register_space"):
    spaces.space_for(cfg)


def test_register_space_adds_a_kind(monkeypatch):
  monkeypatch.setattr(spaces, "_SPACES", dict(spaces._SPACES))  # pylint: disable=protected-access
  spaces.register_space("nope", lambda cfg: [spaces.log_float("model.reg", 1e-3, 1.0),
                                             spaces.int_range("model.rank", 2, 8)])
  cfg = movielens_1m.get_config("item")
  with cfg.unlocked():
    cfg.model.kind = "nope"
  name, params = spaces.space_for(cfg)
  assert name == "nope" and [p.name for p in params] == ["model.reg", "model.rank"]
  (sampled, values, trial_cfg), = _sample(cfg, params, n=1)
  assert trial_cfg.model.rank == values["model.rank"] == sampled["model.rank"]
