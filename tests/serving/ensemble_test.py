import json
import pathlib

import numpy as np
import pytest

from autorec_jax.serving import api
from autorec_jax.serving import ensemble
from autorec_jax.serving import predict
from tests import trained_runs


@pytest.fixture(scope="module")
def members(tmp_path_factory):
  return [api.load(str(trained_runs.tiny_run(tmp_path_factory, o))) for o in ("user", "item")]


def test_blend_weights_recover_an_exact_mix():
  rng = np.random.default_rng(0)
  preds = rng.normal(size=(2, 500))
  truth = 0.3 * preds[0] + 0.7 * preds[1]
  np.testing.assert_allclose(ensemble.blend_weights(preds, truth), [0.3, 0.7], atol=1e-9)
  three = rng.normal(size=(3, 500))
  w = ensemble.blend_weights(three, three.T @ np.array([0.2, 0.5, 0.3]))
  np.testing.assert_allclose(w, [0.2, 0.5, 0.3], atol=1e-9)


def test_blend_weights_minimise_the_error_on_a_grid():
  rng = np.random.default_rng(1)
  truth = rng.normal(size=300)
  preds = np.stack([truth + rng.normal(size=300), truth + 2 * rng.normal(size=300)])
  w = ensemble.blend_weights(preds, truth)
  assert w.sum() == pytest.approx(1.0)
  sse = lambda a: np.sum((a * preds[0] + (1 - a) * preds[1] - truth) ** 2)
  grid = np.linspace(-0.5, 1.5, 2001)
  assert sse(w[0]) <= min(sse(a) for a in grid) + 1e-9


def test_average_is_the_mean_of_the_members(members):
  test = members[0].predictor.part("test")
  avg = ensemble.Ensemble.average(members)
  mean = np.mean([m.predictor.predict(test.user, test.item) for m in members], axis=0)
  np.testing.assert_allclose(avg.predict_index(test.user, test.item), mean, atol=1e-6)
  ids = (members[0].user_ids[test.user], members[0].item_ids[test.item])
  np.testing.assert_array_equal(avg.predict(*ids), avg.predict_index(test.user, test.item))
  m = avg.evaluate("test")
  assert m["count"] == test.num_ratings
  assert m["rmse"] == pytest.approx(
      predict.metrics(avg.predict_index(test.user, test.item), test.rating)["rmse"])


def test_fitted_blend_is_no_worse_than_members_or_average_on_validation(members):
  blend = ensemble.Ensemble.fit(members)
  assert blend.weights.sum() == pytest.approx(1.0)
  valid = members[0].predictor.part("valid")
  fitted = blend.evaluate("valid")["rmse"]
  for m in members:
    own = predict.metrics(m.predictor.predict(valid.user, valid.item), valid.rating)["rmse"]
    assert fitted <= own + 1e-6
  assert fitted <= ensemble.Ensemble.average(members).evaluate("valid")["rmse"] + 1e-6


def test_members_must_share_data_and_split(members, tmp_path_factory):
  other = api.load(str(trained_runs.tiny_run(tmp_path_factory, "item")))
  other.predictor.cfg.data.seed = 1
  with pytest.raises(ValueError, match="same data and split"):
    ensemble.Ensemble.average([members[0], other])
  with pytest.raises(ValueError, match="one weight per member"):
    ensemble.Ensemble(members, [1.0])


def test_ranking_metrics_agree_with_the_runs_own(members):
  for m in members:
    data = m.predictor.data
    got = ensemble.ranking_metrics(m.scores, train=data.train, target=data.test,
                                   trained_items=m.trained_items, ks=(10,), threshold=4.0)
    results = json.loads((pathlib.Path(m.workdir) / "results.json").read_text())
    assert got["ndcg@10"] == pytest.approx(results["test/ndcg@10"], abs=1e-6)
    assert got["recall@10"] == pytest.approx(results["test/recall@10"], abs=1e-6)


def test_ensemble_scores_mix_the_members(members):
  blend = ensemble.Ensemble(members, [0.25, 0.75])
  users = np.arange(5)
  np.testing.assert_allclose(
      blend.scores(users), 0.25 * members[0].scores(users) + 0.75 * members[1].scores(users),
      atol=1e-5)
