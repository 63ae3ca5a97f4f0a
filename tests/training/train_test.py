import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from autorec_jax.models import registry as model_registry
from autorec_jax.models.autoencoder import AutoEncoder
from autorec_jax.runtime import parallel
from autorec_jax.training import loop as train
from autorec_jax.training import step as train_step_lib
from autorec_jax.training import workdir as workdir_lib
from configs import movielens_1m
from tests import synthetic


def _batch(rng, rows=8, width=12):
  x = np.where(rng.random((rows, width)) < 0.4, rng.integers(1, 6, (rows, width)), 0)
  return {"x": x.astype(np.float32), "mask": (x > 0).astype(np.float32),
          "row_mask": np.ones(rows, np.float32)}


def _setup(refeed_steps, lr=0.05, hidden=(6,), dropout=0.0):
  model = AutoEncoder(hidden=hidden, activation="selu", dropout=dropout)
  tx = optax.sgd(lr)
  state = train_step_lib.init_state(model, tx, 12, jax.random.key(0))
  step = jax.jit(train_step_lib.make_train_step(model, tx, refeed_steps=refeed_steps))
  return model, tx, state, step


def test_loss_falls_on_a_small_matrix():
  rng = np.random.default_rng(0)
  batch = _batch(rng)
  _, _, state, step = _setup(0)
  key = jax.random.key(1)
  first = None
  for _ in range(40):
    state, m = step(state, batch, key)
    first = float(m["train/loss"]) if first is None else first
  assert float(m["train/loss"]) < 0.5 * first
  assert int(state.step) == 40


def test_refeeding_is_a_second_dense_update_on_the_first_output():
  rng = np.random.default_rng(0)
  batch = _batch(rng)
  batch["row_mask"][-2:] = 0.0  # padding rows must not count in either pass
  model, tx, state, step = _setup(1)
  new_state, metrics = step(state, batch, jax.random.key(3))

  def loss(params, x, y, m):
    pred = model.apply({"params": params}, x, train=False)
    return jnp.sum(m * (pred - y) ** 2) / jnp.sum(m), pred

  rm = batch["row_mask"][:, None]
  (l1, pred), g1 = jax.value_and_grad(loss, has_aux=True)(
      state.params, batch["x"], batch["x"], batch["mask"] * rm)
  p1 = jax.tree.map(lambda p, g: p - 0.05 * g, state.params, g1)
  dense = pred * rm
  full = jnp.broadcast_to(rm, dense.shape)
  l2, g2 = jax.value_and_grad(lambda p: loss(p, dense, dense, full)[0])(p1)
  p2 = jax.tree.map(lambda p, g: p - 0.05 * g, p1, g2)
  np.testing.assert_allclose(metrics["train/loss"], l1, rtol=1e-5)
  np.testing.assert_allclose(metrics["train/refeed_loss"], l2, rtol=1e-5)
  for a, b in zip(jax.tree.leaves(new_state.params), jax.tree.leaves(p2)):
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_padding_rows_do_not_change_the_update():
  rng = np.random.default_rng(0)
  batch = _batch(rng)
  padded = {k: np.concatenate([v, np.zeros_like(v[:4])]) for k, v in batch.items()}
  padded["x"][-4:] = 3.0  # garbage in padding rows with row_mask 0
  _, _, state, step = _setup(1)
  a, _ = step(state, batch, jax.random.key(0))
  b, _ = step(state, padded, jax.random.key(0))
  for x, y in zip(jax.tree.leaves(a.params), jax.tree.leaves(b.params)):
    np.testing.assert_allclose(x, y, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("refeed_steps", [0, 1])
def test_one_and_eight_devices_give_the_same_metrics(refeed_steps):
  assert jax.device_count() == 8
  rng = np.random.default_rng(0)
  batches = [_batch(rng, rows=16) for _ in range(5)]
  model = AutoEncoder(hidden=(8,), activation="selu", dropout=0.5)
  tx = optax.adam(1e-2)
  results = []
  for devices in (jax.devices()[:1], jax.devices()):
    mesh = jax.make_mesh((len(devices),), ("data",), devices=devices,
                         axis_types=(jax.sharding.AxisType.Auto,))
    repl, data = parallel.replicated(mesh), parallel.data_sharded(mesh)
    state = jax.device_put(train_step_lib.init_state(model, tx, 12, jax.random.key(0)), repl)
    step = jax.jit(train_step_lib.make_train_step(model, tx, refeed_steps=refeed_steps),
                   in_shardings=(repl, data, repl), out_shardings=(repl, repl))
    losses = []
    for b in batches:
      state, m = step(state, parallel.to_global(b, data), jax.random.key(7))
      losses.append(float(m["train/loss"]))
    results.append((losses, jax.device_get(state.params)))
  np.testing.assert_allclose(results[0][0], results[1][0], rtol=1e-5)
  for a, b in zip(jax.tree.leaves(results[0][1]), jax.tree.leaves(results[1][1])):
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)


def _tiny_config(data_path):
  cfg = movielens_1m.get_config("tiny")
  cfg.data.name = "csv"
  cfg.data.path = str(data_path)
  cfg.train.num_epochs = 3
  cfg.train.batch_size = 16
  cfg.eval.batch_size = 32
  return cfg


def test_train_and_evaluate_writes_the_workdir(tmp_path):
  import json
  data = synthetic.write_ratings_csv(tmp_path / "r.csv")
  cfg = _tiny_config(data)
  results = train.train_and_evaluate(cfg, str(tmp_path / "run"))
  run = tmp_path / "run"
  for name in ("config.json", "metrics.jsonl", "results.json", "checkpoints"):
    assert (run / name).exists(), name
  rows = [json.loads(l) for l in (run / "metrics.jsonl").read_text().splitlines()]
  assert [r["epoch"] for r in rows] == [1, 2, 3]
  assert all("valid/rmse" in r for r in rows)
  best = min(r["valid/rmse"] for r in rows)
  assert rows[results["best_epoch"] - 1]["valid/rmse"] == best
  assert results["valid/rmse"] == pytest.approx(best)
  assert len({r["valid/rmse"] for r in rows}) > 1, "the tiny model should learn"
  for key in ("test/rmse", "test/mae", "seconds_per_epoch", "num_params"):
    assert key in results
  assert 0.3 < results["test/rmse"] < 2.0
  assert list((run / "tensorboard").iterdir())


def test_a_different_config_in_the_same_workdir_is_refused(tmp_path):
  from autorec_jax.config.checks import ConfigError
  data = synthetic.write_ratings_csv(tmp_path / "r.csv")
  cfg = _tiny_config(data)
  cfg.train.num_epochs = 1
  train.train_and_evaluate(cfg, str(tmp_path / "run"))
  cfg.model.hidden = (8,)
  with pytest.raises(ConfigError, match="model.hidden"):
    train.train_and_evaluate(cfg, str(tmp_path / "run"))


def test_a_run_saved_before_a_new_config_field_existed_still_resumes(tmp_path):
  import json
  data = synthetic.write_ratings_csv(tmp_path / "r.csv")
  cfg = _tiny_config(data)
  cfg.train.num_epochs = 1
  train.train_and_evaluate(cfg, str(tmp_path / "run"))
  path = tmp_path / "run" / "config.json"
  saved = json.loads(path.read_text())
  del saved["model"]["compute_dtype"]  # as written by an older version
  path.write_text(json.dumps(saved))
  cfg.train.num_epochs = 2
  workdir_lib.check_workdir(cfg, str(tmp_path / "run"))  # the default counts: accepted
  cfg.model.compute_dtype = "bfloat16"
  with pytest.raises(train.config_checks.ConfigError, match="model.compute_dtype"):
    workdir_lib.check_workdir(cfg, str(tmp_path / "run"))


def test_bfloat16_compute_trains_to_the_float32_rmse(tmp_path):
  data = synthetic.write_ratings_csv(tmp_path / "r.csv")
  cfg = _tiny_config(data)
  full = train.train_and_evaluate(cfg, str(tmp_path / "f32"))
  cfg.model.compute_dtype = "bfloat16"
  mixed = train.train_and_evaluate(cfg, str(tmp_path / "bf16"))
  assert mixed["test/rmse"] != full["test/rmse"]  # the products were really rounded
  assert mixed["test/rmse"] == pytest.approx(full["test/rmse"], abs=0.02)


def test_resume_continues_from_the_latest_checkpoint(tmp_path):
  data = synthetic.write_ratings_csv(tmp_path / "r.csv")
  cfg = _tiny_config(data)
  full = train.train_and_evaluate(cfg, str(tmp_path / "full"))
  cfg.train.num_epochs = 2
  train.train_and_evaluate(cfg, str(tmp_path / "resumed"))
  cfg.train.num_epochs = 3  # extending a finished run is allowed and resumes it
  resumed = train.train_and_evaluate(cfg, str(tmp_path / "resumed"))
  assert resumed["test/rmse"] == pytest.approx(full["test/rmse"], rel=1e-6)
  assert resumed["best_epoch"] == full["best_epoch"]


def test_denoising_step_with_alpha_beta_matches_a_hand_computation():
  from autorec_jax.models import losses
  from autorec_jax.training import noise
  rng = np.random.default_rng(0)
  batch = _batch(rng)
  model = AutoEncoder(hidden=(6,), activation="selu")
  tx = optax.sgd(0.05)
  state = train_step_lib.init_state(model, tx, 12, jax.random.key(0))
  cfg = noise.NoiseConfig(masking=0.5)
  step = jax.jit(train_step_lib.make_train_step(model, tx, refeed_steps=0, noise=cfg, alpha=2.0,
                                       beta=0.5))
  new_state, metrics = step(state, batch, jax.random.key(4))
  keys = jax.random.split(jax.random.fold_in(jax.random.key(4), 0), 2)
  x_in, corrupted = noise.corrupt(jnp.asarray(batch["x"]), jnp.asarray(batch["mask"]), cfg,
                                  keys[1])
  assert float(corrupted.sum()) > 0

  def loss(p):
    pred = model.apply({"params": p}, x_in, train=False)
    total, count = losses.denoising_sse(pred, batch["x"], batch["mask"], corrupted,
                                        alpha=2.0, beta=0.5)
    return total / count

  np.testing.assert_allclose(metrics["train/loss"], loss(state.params), rtol=1e-5)


def test_scaled_and_unbiased_run_reports_metrics_on_the_rating_scale(tmp_path):
  from autorec_jax.serving import predict
  data = synthetic.write_ratings_csv(tmp_path / "r.csv")
  cfg = _tiny_config(data)
  cfg.preprocess.scale = True
  cfg.preprocess.bias = "row"
  cfg.noise.masking = 0.25
  cfg.loss.alpha = 1.2
  cfg.loss.beta = 0.8
  results = train.train_and_evaluate(cfg, str(tmp_path / "run"))
  assert 0.5 < results["test/rmse"] < 1.5  # a bias-only model already gets ~1 here
  predictor = predict.Predictor(str(tmp_path / "run"))
  test = predictor.part("test")
  m = predict.metrics(predictor.predict(test.user, test.item), test.rating)
  assert m["rmse"] == pytest.approx(results["test/rmse"], rel=1e-5)


def test_hidden_fractions_scale_with_the_input_width():
  cfg = movielens_1m.get_config()
  cfg.model.hidden_fractions = (0.1, 1 / 12)
  assert model_registry.hidden_widths(cfg.model, 3706) == (371, 309)
  assert model_registry.make_model(cfg.model, 6040).hidden == (604, 503)
  with pytest.raises(ValueError, match="needs the input width"):
    model_registry.make_model(cfg.model)


def test_validation_ranking_every_n_epochs_and_else_once_on_the_best(tmp_path):
  import json
  data = synthetic.write_ratings_csv(tmp_path / "r.csv")
  cfg = _tiny_config(data)
  cfg.train.patience = 0
  runs = {}
  for every in (0, 1, 2):
    cfg.eval.ranking_every_epochs = every
    runs[every] = train.train_and_evaluate(cfg, str(tmp_path / f"every{every}"))
    rows = [json.loads(l) for l in (tmp_path / f"every{every}" / "metrics.jsonl")
            .read_text().splitlines()]
    ranked = [r["epoch"] for r in rows if "valid/ndcg@10" in r]
    assert ranked == {0: [], 1: [1, 2, 3], 2: [2]}[every]
  for every in (0, 2):  # the same best model, measured once at the end
    for key in ("valid/ndcg@10", "valid/map@10", "test/ndcg@10", "test/rmse"):
      assert runs[every][key] == runs[1][key], (every, key)
  assert runs[0]["valid/ndcg@10"] is not None
