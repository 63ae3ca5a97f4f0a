import json

import jax
import numpy as np
import pytest

from autorec_jax.serving import predict
from autorec_jax.training import stacked
from tests import synthetic
from tests.training.train_test import _tiny_config


def _stacked_config(data):
  cfg = _tiny_config(data)
  cfg.model.hidden = (12, 6)
  cfg.model.activation = "tanh"
  cfg.preprocess.scale = True
  cfg.preprocess.bias = "row"
  cfg.stacked.enabled = True
  cfg.stacked.outer.num_epochs = 2
  cfg.stacked.outer.masking = 0.15
  cfg.stacked.outer.salt_pepper = 0.05
  cfg.stacked.outer.beta = 0.8
  cfg.stacked.inner.num_epochs = 2
  cfg.stacked.inner.gaussian = 0.8
  cfg.stacked.inner.gaussian_std = 0.02
  cfg.optim.name = "sgd"
  cfg.optim.momentum = 0.8
  cfg.optim.learning_rate = 0.004
  cfg.stacked.outer.learning_rate = 0.03
  cfg.stacked.inner.learning_rate = 0.01
  return cfg


def test_assemble_puts_inner_layers_inside_outer_ones():
  outer = {"enc0_kernel": 1, "enc0_bias": 2, "dec0_kernel": 3, "dec0_bias": 4}
  # The inner network's output kernel is items-major [h1, h2]; as the stacked
  # network's middle layer it is stored [h2, h1].
  inner_out = np.arange(6.0).reshape(3, 2)
  inner = {"enc0_kernel": 5, "enc0_bias": 6, "dec0_kernel": inner_out, "dec0_bias": 8}
  got = stacked.assemble(outer, inner)
  np.testing.assert_array_equal(got.pop("dec0_kernel"), inner_out.T)
  assert got == {"enc0_kernel": 1, "enc0_bias": 2, "enc1_kernel": 5, "enc1_bias": 6,
                 "dec0_bias": 8, "dec1_kernel": 3, "dec1_bias": 4}


def test_codes_matrix_stores_every_entry_even_zeros():
  codes = np.array([[0.0, 0.5], [-0.2, 0.0]], np.float32)
  m = stacked._codes_matrix(codes)
  assert m.nnz == 4
  np.testing.assert_array_equal(m.toarray(), codes)


def test_three_stages_run_log_and_resume(tmp_path):
  data = synthetic.write_ratings_csv(tmp_path / "r.csv")
  cfg = _stacked_config(data)
  workdir = tmp_path / "run"
  results = stacked.train_stacked(cfg, str(workdir))
  for stage in ("stage1_outer", "stage2_inner", "stage3_finetune"):
    rows = [json.loads(l) for l in (workdir / stage / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows] == [1, 2, 3][:len(rows)] and rows, stage
    assert all(np.isfinite(r["train/loss"]) for r in rows)
  assert results["stages"]["inner"]["codes"][1] == 12
  on_disk = json.loads((workdir / "results.json").read_text())
  assert on_disk["test/rmse"] == pytest.approx(results["test/rmse"])
  assert json.loads((workdir / "config.json").read_text())["stacked"]["enabled"] is True
  # The predictor finds the fine-tuned model and reproduces the test metrics.
  p = predict.Predictor(str(workdir))
  test = p.part("test")
  m = predict.metrics(p.predict(test.user, test.item), test.rating)
  assert m["rmse"] == pytest.approx(results["test/rmse"], rel=1e-5)
  # Running again resumes every stage from its checkpoints and gives the same results.
  again = stacked.train_stacked(cfg, str(workdir))
  assert again["test/rmse"] == pytest.approx(results["test/rmse"], rel=1e-6)


def test_finetuning_starts_from_the_assembled_weights(tmp_path, monkeypatch):
  from autorec_jax.training import loop as train
  data = synthetic.write_ratings_csv(tmp_path / "r.csv")
  cfg = _stacked_config(data)
  seen = {}
  real = train.train_and_evaluate

  def spy(c, workdir, *, init_params=None):
    if init_params is not None:
      seen["params"] = jax.tree.map(np.asarray, init_params)
    return real(c, workdir, init_params=init_params)

  monkeypatch.setattr(train, "train_and_evaluate", spy)
  stacked.train_stacked(cfg, str(tmp_path / "run"))
  shapes = {k: v.shape for k, v in seen["params"].items()}
  assert shapes["enc0_kernel"][1] == 12 and shapes["enc1_kernel"] == (12, 6)
  assert shapes["dec0_kernel"] == (6, 12) and shapes["dec1_kernel"][1] == 12
