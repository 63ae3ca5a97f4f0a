"""The full-batch kernel trainer: runs, resumes, GLocal-K's stages, serving the runs."""

import json

import numpy as np
import pytest

from autorec_jax.config import kernel as kernel_configs
from autorec_jax.serving import api, predict
from autorec_jax.training import full_batch, registry
from tests import synthetic
from tests.training.train_test import _tiny_config


def _kernel_config(data, *, glocal=False):
  cfg = _tiny_config(data)
  (kernel_configs.glocal_k if glocal else kernel_configs.kernelnet)(cfg)
  cfg.model.hidden = (10, 8)
  cfg.lbfgs.iterations = 4
  cfg.lbfgs.pretrain_iterations = 4
  cfg.lbfgs.pretrain_rounds = 2
  cfg.train.num_epochs = 3
  return cfg


def test_kernel_configs_select_the_full_batch_trainer(tmp_path):
  cfg = _kernel_config(synthetic.write_ratings_csv(tmp_path / "r.csv"))
  assert registry.select(cfg) is full_batch.train_full_batch


def test_effective_lambdas_follow_the_size_rule():
  cfg = _kernel_config("unused").model.kernel
  assert full_batch.effective_lambdas(cfg, 900_000) == pytest.approx((60.0, 0.013))
  l2, ls = full_batch.effective_lambdas(cfg, 225_000)
  assert l2 == pytest.approx(60.0 * 0.5) and ls == pytest.approx(0.013 * 0.5)
  cfg.scale_lambdas = False
  assert full_batch.effective_lambdas(cfg, 1000) == (60.0, 0.013)

def test_a_run_resumes_to_the_same_result(tmp_path):
  cfg = _kernel_config(synthetic.write_ratings_csv(tmp_path / "r.csv"))
  full = full_batch.train_full_batch(cfg, str(tmp_path / "full"))
  cfg.train.num_epochs = 2
  full_batch.train_full_batch(cfg, str(tmp_path / "resumed"))
  cfg.train.num_epochs = 3
  resumed = full_batch.train_full_batch(cfg, str(tmp_path / "resumed"))
  assert resumed["test/rmse"] == pytest.approx(full["test/rmse"], rel=1e-6)
  assert resumed["best_epoch"] == full["best_epoch"]
  rows = [json.loads(l) for l in (tmp_path / "resumed" / "metrics.jsonl").read_text()
          .splitlines() if '"epoch"' in l]
  assert [r["epoch"] for r in rows if "valid/rmse" in r] == [1, 2, 3]


def test_glocal_runs_both_stages_and_picks_the_best_among_fine_tuning_rounds(tmp_path):
  cfg = _kernel_config(synthetic.write_ratings_csv(tmp_path / "r.csv"), glocal=True)
  workdir = tmp_path / "run"
  results = full_batch.train_full_batch(cfg, str(workdir))
  rows = [json.loads(l) for l in (workdir / "metrics.jsonl").read_text().splitlines()
          if '"train/stage"' in l]
  assert [r["train/stage"] for r in rows] == ["pretrain"] * 2 + ["finetune"] * 3
  assert results["best_epoch"] > 2
  assert np.isfinite(results["test/rmse"])
  assert results["compile_seconds"] >= 0 and results["train_seconds"] > 0


@pytest.mark.parametrize("glocal", [False, True])
def test_serving_reads_what_the_network_was_trained_on(tmp_path, glocal):
  cfg = _kernel_config(synthetic.write_ratings_csv(tmp_path / "r.csv"), glocal=glocal)
  workdir = str(tmp_path / "run")
  results = full_batch.train_full_batch(cfg, workdir)
  predictor = predict.Predictor(workdir)
  test = predictor.data.test
  pred = predictor.predict(test.user, test.item)
  rmse = float(np.sqrt(np.mean((pred - test.rating) ** 2)))
  assert rmse == pytest.approx(results["test/rmse"], rel=1e-5)
  model = api.load(workdir)
  users = np.arange(5)
  warm = predictor.data.train
  pairs = [(u, i) for u, i in zip(warm.user, warm.item) if u in users][:20]
  u, i = np.asarray(pairs).T
  scores = model.scores(users)
  np.testing.assert_allclose(np.clip(scores[u, i], 1, 5), predictor.predict(u, i),
                             rtol=1e-4, atol=1e-4)
  if glocal:
    with pytest.raises(ValueError, match="GLocal-K"):
      model.export(str(tmp_path / "export"))
  else:
    assert model.export(str(tmp_path / "export")).endswith("model.jax")


def _valid_curve(workdir):
  """(round, stage, valid RMSE) of every round in a run's metrics.jsonl."""
  rows = [json.loads(l) for l in (workdir / "metrics.jsonl").read_text().splitlines()]
  return [(r["epoch"], r["train/stage"], r["valid/rmse"]) for r in rows if "valid/rmse" in r]


def _patience_stop(curve, patience, *, count_pretrain=False):
  """The round after which a run with this patience stops, read off a free run."""
  best_rmse, best = float("inf"), 0
  for epoch, stage, rmse in curve:
    if stage == "pretrain" and not count_pretrain:
      continue
    if rmse < best_rmse:
      best_rmse, best = rmse, epoch
    elif epoch - best >= patience:
      return epoch
  return curve[-1][0]


def _overfitting_config(data, *, glocal, patience, num_epochs=8):
  cfg = _kernel_config(data, glocal=glocal)
  cfg.model.kernel.lambda_2, cfg.model.kernel.lambda_s = 0.0, 0.0  # a bumpy curve
  cfg.model.kernel.scale_lambdas = False
  cfg.train.num_epochs, cfg.train.patience = num_epochs, patience
  return cfg


def _free_run(tmp_path, *, glocal):
  """(data file, validation curve) of a run without early stopping."""
  data = synthetic.write_ratings_csv(tmp_path / "r.csv")
  full_batch.train_full_batch(_overfitting_config(data, glocal=glocal, patience=0),
                              str(tmp_path / "free"))
  return data, _valid_curve(tmp_path / "free")


def test_patience_stops_a_kernel_run_killed_and_resumed_where_the_curve_says(tmp_path):
  data, curve = _free_run(tmp_path, glocal=False)
  stop = _patience_stop(curve, 2)
  assert stop < len(curve), curve  # the premise: the free run has a plateau of 2
  # Killed after round 1 (a cap of 1), then resumed with the cap of 8.
  workdir = tmp_path / "resumed"
  full_batch.train_full_batch(_overfitting_config(data, glocal=False, patience=2,
                                                  num_epochs=1), str(workdir))
  resumed = full_batch.train_full_batch(_overfitting_config(data, glocal=False, patience=2),
                                        str(workdir))
  assert [e for e, _, _ in _valid_curve(workdir)] == list(range(1, stop + 1))
  assert (resumed["stopped_epoch"], resumed["stop_reason"]) == (stop, "patience")
  assert resumed["best_epoch"] == min(curve[:stop], key=lambda c: c[2])[0]
  assert resumed["preprocess/scale"] is False and resumed["rating_scale"] == [1.0, 5.0]


def test_glocal_patience_counts_fine_tuning_rounds_only(tmp_path):
  data, curve = _free_run(tmp_path, glocal=True)
  stop = _patience_stop(curve, 1)
  # The premise: counting the pre-training rounds would stop at another round.
  assert _patience_stop(curve, 1, count_pretrain=True) != stop, curve
  results = full_batch.train_full_batch(_overfitting_config(data, glocal=True, patience=1),
                                        str(tmp_path / "run"))
  assert results["stopped_epoch"] == stop
  assert results["best_epoch"] > 2  # a fine-tuning round
