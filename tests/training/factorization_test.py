"""End-to-end SVD and ALS-WR runs on small synthetic files, and one short real run."""

import json

import jax
import numpy as np
import pytest

from autorec_jax.artifacts import factors as factors_lib
from autorec_jax.config import checks as config_checks
from autorec_jax.config.schema import base_config
from autorec_jax.data import run_data as run_data_lib
from autorec_jax.data.types import index_ratings
from autorec_jax.evaluation import rmse as evaluate
from autorec_jax.evaluation.pairs import PairPredictor
from autorec_jax.models import factorization as fz
from autorec_jax.serving import predict
from autorec_jax.training import factorization as baselines
from tests import conftest, synthetic

RESULT_KEYS = {"test/rmse", "test/mae", "test/count", "test/cold_count", "valid/rmse",
               "valid/mae", "best_epoch", "epochs_run", "seconds_per_epoch",
               "train_seconds", "compile_seconds", "num_params", "num_users", "num_items",
               "split"}


def _config(kind, data_path=None, **overrides):
  cfg = base_config()
  if data_path is not None:
    cfg.data.name = "csv"
    cfg.data.path = str(data_path)
  cfg.data.download = False
  cfg.model.kind = kind
  cfg.model.rank = 3
  cfg.model.reg = 0.05
  cfg.model.use_biases = True
  cfg.optim.name = "sgd"
  cfg.optim.learning_rate = 0.05
  cfg.optim.momentum = 0.5
  cfg.train.batch_size = 64
  cfg.train.num_epochs = 4
  for key, value in overrides.items():  # "group__field=value", or a top-level field
    group, _, field = key.rpartition("__")
    setattr(cfg[group] if group else cfg, field, value)
  return cfg


def _rows(workdir):
  return [json.loads(line) for line in (workdir / "metrics.jsonl").read_text().splitlines()]


@pytest.mark.parametrize("kind", ["svd", "als"])
def test_run_writes_results_metrics_and_best_factors(tmp_path, kind):
  data = synthetic.write_ratings_csv(tmp_path / "r.csv")
  cfg = _config(kind, data)
  results = baselines.train_and_evaluate_factorization(cfg, str(tmp_path / "run"))
  saved = json.loads((tmp_path / "run" / "results.json").read_text())
  assert RESULT_KEYS <= set(saved)
  assert saved["test/rmse"] == pytest.approx(results["test/rmse"])
  assert saved["epochs_run"] == 4 and saved["num_users"] == 120 and saved["num_items"] == 48
  assert saved["test/count"] == saved["split"]["test"]["ratings"]
  assert 0.0 < saved["test/rmse"] < 1.5 and 0.0 < saved["test/mae"] <= saved["test/rmse"]
  rows = _rows(tmp_path / "run")
  assert [r["epoch"] for r in rows] == [1, 2, 3, 4]
  assert all({"train/rmse", "train/loss", "valid/rmse", "valid/mae"} <= set(r) for r in rows)
  best = min(rows, key=lambda r: r["valid/rmse"])
  assert saved["best_epoch"] == best["epoch"]
  assert saved["valid/rmse"] == pytest.approx(best["valid/rmse"])
  config = json.loads((tmp_path / "run" / "config.json").read_text())
  assert config["model"]["kind"] == kind

  # The saved factors reproduce the reported test RMSE.
  factors, offsets, meta = factors_lib.load_factors(
      str(tmp_path / "run" / factors_lib.BEST_FILE))
  assert meta["epoch"] == saved["best_epoch"]
  run_data = run_data_lib.load_data(cfg)
  predictor = PairPredictor(run_data.train, offsets, run_data.loaded.rating_scale,
                            clip=True)
  assert predictor.evaluate(factors, run_data.test)["rmse"] == pytest.approx(
      saved["test/rmse"], rel=1e-6)

  # As does the predictor that predict.py uses for baseline workdirs.
  loaded = predict.FactorizationPredictor(str(tmp_path / "run"))
  test = loaded.part("test")
  pred = loaded.predict(test.user, test.item)
  assert pred.dtype == np.float32 and loaded.epoch == saved["best_epoch"]
  rmse = np.sqrt(np.mean((pred.astype(np.float64) - test.rating) ** 2))
  assert rmse == pytest.approx(saved["test/rmse"], rel=1e-5)
  with pytest.raises(ValueError, match="split must be"):
    loaded.part("nope")
  with pytest.raises(FileNotFoundError, match="no fitted baseline"):
    predict.FactorizationPredictor(str(tmp_path))


@pytest.mark.parametrize("kind", ["svd", "als"])
def test_same_seed_same_result_and_rerun_starts_afresh(tmp_path, kind):
  data = synthetic.write_ratings_csv(tmp_path / "r.csv")
  a = baselines.train_and_evaluate_factorization(_config(kind, data), str(tmp_path / "a"))
  b = baselines.train_and_evaluate_factorization(_config(kind, data), str(tmp_path / "a"))
  assert a["test/rmse"] == b["test/rmse"] and a["valid/rmse"] == b["valid/rmse"]
  assert len(_rows(tmp_path / "a")) == 4  # the rerun replaced the first run's rows
  c = baselines.train_and_evaluate_factorization(_config(kind, data, seed=1),
                                                 str(tmp_path / "c"))
  assert c["test/rmse"] != a["test/rmse"]
  with pytest.raises(config_checks.ConfigError, match="different config"):
    baselines.train_and_evaluate_factorization(_config(kind, data, seed=1),
                                               str(tmp_path / "a"))
  assert len(_rows(tmp_path / "a")) == 4  # the refused run touched nothing


def test_training_lowers_train_rmse_and_rank_changes_num_params(tmp_path):
  data = synthetic.write_ratings_csv(tmp_path / "r.csv")
  for kind, learnt_biases in (("svd", 120 + 48), ("als", 120 + 48)):
    res = baselines.train_and_evaluate_factorization(
        _config(kind, data, model__rank=5, train__num_epochs=6), str(tmp_path / kind))
    rows = _rows(tmp_path / kind)
    assert rows[-1]["train/rmse"] < rows[0]["train/rmse"]
    assert res["num_params"] == (120 + 48) * 5 + learnt_biases


def test_without_validation_the_last_epoch_is_used(tmp_path):
  data = synthetic.write_ratings_csv(tmp_path / "r.csv")
  res = baselines.train_and_evaluate_factorization(
      _config("als", data, data__valid_fraction=0.0), str(tmp_path / "run"))
  assert res["best_epoch"] == 4 and res["valid/rmse"] is None  # null in results.json
  assert "valid/rmse" not in _rows(tmp_path / "run")[0]


def test_cold_pairs_get_the_train_stats_fallback_and_predictions_are_clipped():
  ratings = index_ratings(np.array([1, 1, 2, 2, 3]), np.array([10, 11, 10, 11, 12]),
                          np.array([5, 4, 1, 2, 3], np.float32))
  train_part = ratings.subset(np.array([0, 1, 2, 3]))  # user 3 and item 12 are cold
  value = fz.to_unit_scale(train_part.rating, 1, 5)
  offsets = fz.fit_offsets(train_part.user, train_part.item, value, 3, 3, use_biases=True)
  factors = fz.init_factors(jax.random.key(0), 3, 3, 2, init_std=5.0)
  predictor = PairPredictor(train_part, offsets, (1.0, 5.0), clip=True)
  user, item = np.array([0, 2, 2, 1]), np.array([0, 0, 2, 1])
  pred = predictor(factors, user, item)
  stats = evaluate.TrainStats.from_ratings(train_part)
  np.testing.assert_allclose(pred[1:3], stats.fallback(user[1:3], item[1:3]))
  assert np.all((pred >= 1.0) & (pred <= 5.0))
  unclipped = PairPredictor(train_part, offsets, (1.0, 5.0), clip=False)(
      factors, user, item)
  assert np.any((unclipped < 1.0) | (unclipped > 5.0))  # large factors leave the scale
  result = predictor.evaluate(factors, ratings.subset(np.array([4])))
  assert result["cold_count"] == 1 and result["count"] == 1


@pytest.mark.parametrize("field,value,message", [
    ("kind", "autoencoder", "model.kind"), ("rank", 0, "model.rank"),
    ("reg", -1.0, "model.reg")])
def test_bad_config_is_refused_with_the_field_named(tmp_path, field, value, message):
  cfg = _config("svd", tmp_path / "unused.csv")
  setattr(cfg.model, field, value)
  with pytest.raises(config_checks.ConfigError, match=message):
    baselines.train_and_evaluate_factorization(cfg, str(tmp_path / "run"))


def test_real_movielens_1m_als(tmp_path, monkeypatch):
  conftest.require_data("movielens-1m/ratings_no_timestamps.csv.gz")
  monkeypatch.setenv("AUTOREC_DATA_DIR", str(conftest.shared_data_dir()))
  cfg = _config("als", model__rank=10, model__reg=0.03, model__use_biases=False,
                train__num_epochs=3)
  cfg.data.name = "movielens_1m"
  res = baselines.train_and_evaluate_factorization(cfg, str(tmp_path / "run"))
  assert res["num_users"] == 6040 and res["num_items"] == 3706
  assert res["test/count"] == pytest.approx(100021, abs=1)
  assert res["test/rmse"] < 0.89
