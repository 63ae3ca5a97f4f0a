"""experiments/fold_in.py and experiments/ensemble_ml1m.py on the tiny synthetic runs.

The real measurements train on MovieLens-1M for minutes; here the same functions run
on small trained models so that their bookkeeping (held-out parts, metrics, tables)
is checked.
"""

import re

import numpy as np
import pytest

from autorec_jax.data import datasets
from autorec_jax.serving import api
from autorec_jax.serving import ensemble
from experiments import ensemble_ml1m
from experiments import fold_in as fx
from tests import trained_runs


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
  models = {o: api.load(str(trained_runs.tiny_run(tmp_path_factory, o)))
            for o in ("user", "item")}
  cfg = trained_runs.config(trained_runs.data_file(tmp_path_factory), "user")
  ratings = datasets.load(cfg.data).ratings
  held = np.zeros(ratings.num_users, bool)
  held[::4] = True
  return models, ratings, held


def test_held_out_parts_split_the_held_users_ratings(setup):
  models, ratings, held = setup
  model = models["user"]
  given, target, dropped = fx.held_out_parts(ratings, held, model)
  assert dropped == 0  # every item of the synthetic data is in the model
  assert given.num_users == target.num_users == held.sum()
  assert given.num_ratings + target.num_ratings < np.isin(ratings.user,
                                                          np.flatnonzero(held)).sum()
  assert target.num_ratings == pytest.approx(0.1 * (given.num_ratings / 0.855), rel=0.3)
  # The ratings are the held users' own, under the model's item ids.
  pairs = {(u, i) for u, i in zip(ratings.user_ids[ratings.user], ratings.item_ids[ratings.item])}
  assert all((given.user_ids[u], model.item_ids[i]) in pairs
             for u, i in zip(given.user, given.item))


def test_measure_reports_seen_held_out_and_baseline(setup):
  models, ratings, held = setup
  for orientation, model in models.items():
    out = fx.measure(model, ratings, held, refit_users=10)
    h = out["held_out"]
    for method in api.FOLD_IN_METHODS[orientation]:
      assert 0.2 < h[method]["rmse"] < 2.5
      assert 0.0 <= h[method]["ndcg@10"] <= 1.0
    assert 0.2 < h["no_fold_in"]["rmse"] < 2.5
    assert out["seen_refit"]["users"] == 10 and "trained" in out["seen_refit"]
  text = fx.markdown({"user": fx.measure(models["user"], ratings, held, 0)},
                     type("Args", (), {"out": "/tmp/x", "holdout_fraction": 0.25,
                                       "seed": 0})())
  assert "held out, folded in: code refined (default)" in text
  assert "held-out minus seen RMSE: refine" in text


def test_ensemble_script_compares_members_and_mixes(setup):
  models, _, _ = setup
  rows, weights = ensemble_ml1m.compare({"user": models["user"], "item": models["item"]})
  assert len(rows) == 4 and weights.sum() == pytest.approx(1.0)
  blend = ensemble.Ensemble.fit([models["user"], models["item"]])
  assert list(rows.values())[3]["test/rmse"] == pytest.approx(
      blend.evaluate("test")["rmse"])
  text = ensemble_ml1m.markdown(rows, "/tmp/x", ["user", "item"], 10, 20)
  assert text.count("\n| ") == 5 and "fitted blend" in text


def test_ensemble_members_are_variants_with_overrides():
  assert ensemble_ml1m.split_members(
      "user, item+model.hidden=(725,)+optim.learning_rate=0.003,kernelnet+seed=1") == [
          "user", "item+model.hidden=(725,)+optim.learning_rate=0.003", "kernelnet+seed=1"]
  cfg = ensemble_ml1m.member_config("item+model.hidden=(725,)+optim.learning_rate=0.003")
  assert cfg.model.hidden == (725,) and cfg.optim.learning_rate == 0.003
  seeded = ensemble_ml1m.member_config("kernelnet+seed=1")
  assert seeded.seed == 1 and seeded.data.seed == 0  # the split stays the same
  for bad, says in (("item+nope=1", "--config.nope: no such config field"),
                    ("item+seed", "Missing value for flag --config.seed"),
                    ("item+optim.learning_rate=fast", "could not convert string to float"),
                    ("huge", "unknown variant 'huge'")):
    with pytest.raises(SystemExit, match=re.escape(says)):
      ensemble_ml1m.member_config(bad)
