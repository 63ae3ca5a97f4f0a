"""The native SGD-momentum update: the same parameters, state and gradient norm as
optax.sgd, in place under donation, and applied only where it is the whole update."""

import json
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from autorec_jax.config.schema import base_config
from autorec_jax.native import fused_sgd
from autorec_jax.native import sparse_input
from autorec_jax.training import optim
from tests import conftest, synthetic


@pytest.fixture(autouse=True)
def kernels(request):
  if request.node.name.startswith("test_applies"):
    return
  ok, why = sparse_input.available()
  if not ok and "no C++ compiler" in why:
    pytest.skip(why)  # the native update is optional, like the sparse kernels
  assert ok, why


def _sgd_config(**overrides):
  cfg = base_config().optim
  cfg.name, cfg.momentum, cfg.learning_rate = "sgd", 0.9, 0.05
  cfg.schedule, cfg.decay_rate = "exponential", 0.5
  for k, v in overrides.items():
    setattr(cfg, k, v)
  return cfg


@pytest.mark.parametrize("updates_per_step", [1, 2])
def test_equals_optax_sgd_with_momentum(updates_per_step):
  cfg = _sgd_config()
  tx, _ = optim.from_config(cfg, steps_per_epoch=3, updates_per_step=updates_per_step)
  per_update, _ = optim.learning_rate_fn(cfg, 3, updates_per_step=updates_per_step)
  fused = fused_sgd.FusedSgd(momentum=0.9, learning_rate=per_update)
  rng = np.random.default_rng(0)
  # a large array (several parts on the thread pool), a small one, a scalar-like one
  params = {"w": jnp.asarray(rng.normal(size=(700, 300)), jnp.float32),
            "b": jnp.asarray(rng.normal(size=(5,)), jnp.float32),
            "c": jnp.asarray(rng.normal(size=(1,)), jnp.float32)}

  @jax.jit
  def reference(p, s, g):
    u, s = tx.update(g, s, p)
    return optax.apply_updates(p, u), s, optax.tree.norm(g)

  step = jax.jit(lambda p, s, g: fused.apply(g, s, p))
  p1 = p2 = params
  s1 = s2 = tx.init(params)
  for _ in range(7):  # across the exponential schedule's epochs
    g = jax.tree.map(lambda x: jnp.asarray(rng.normal(size=x.shape), jnp.float32), params)
    p1, s1, n1 = reference(p1, s1, g)
    p2, s2, n2 = step(p2, s2, g)
    assert float(n2) == pytest.approx(float(n1), rel=1e-5)
  for a, b in zip(jax.tree.leaves((p1, s1)), jax.tree.leaves((p2, s2))):
    np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
  assert jax.tree.structure(s1) == jax.tree.structure(s2)  # checkpoints interchangeable


def test_updates_in_place_when_the_state_is_donated():
  cfg = _sgd_config()
  tx, _ = optim.from_config(cfg, steps_per_epoch=3)
  per_update, _ = optim.learning_rate_fn(cfg, 3)
  fused = fused_sgd.FusedSgd(momentum=0.9, learning_rate=per_update)
  params = {"w": jnp.ones((64, 64))}
  step = jax.jit(lambda p, s, g: fused.apply(g, s, p), donate_argnums=(0, 1))
  hlo = step.lower(params, tx.init(params), params).compile().as_text()
  assert "AutorecSgdMomentum" in hlo
  assert "f32[64,64]{1,0} copy(" not in hlo  # no copy of the parameter or momentum


@pytest.mark.parametrize("overrides,why", [
    (dict(name="adam"), "not SGD with momentum"),
    (dict(momentum=0.0), "not SGD with momentum"),
    (dict(nesterov=True), "Nesterov"),
    (dict(weight_decay=1e-4), "weight decay"),
    (dict(grad_clip_norm=1.0), "clipping"),
    (dict(fused=False), "optim.fused=False"),
])
def test_applies_only_where_it_is_the_whole_update(overrides, why):
  ok, reason = fused_sgd.applies(_sgd_config(**overrides), num_devices=1)
  assert not ok and why in reason
  ok, reason = fused_sgd.applies(_sgd_config(), num_devices=8)
  assert not ok and "8 devices" in reason


@pytest.mark.parametrize("input_path", ["dense", "sparse"])
def test_training_with_the_fused_update_equals_optax(tmp_path, input_path):
  # One device, so `main` runs in subprocesses (the tests' default is 8 fake ones).
  # On the sparse path the fused update also sums the first and output kernels'
  # gradients itself (deferred kernel gradients); optax gets them built.
  data = synthetic.write_ratings_csv(tmp_path / "r.csv", num_users=150, num_items=60,
                                     density=0.15)
  results = {}
  for fused in (True, False):
    workdir = tmp_path / f"fused_{fused}"
    cmd = [sys.executable, "-m", "autorec_jax.main", "--config=configs/movielens_1m.py:tiny",
           f"--workdir={workdir}", "--config.data.name=csv", f"--config.data.path={data}",
           "--config.optim.name=sgd", "--config.optim.momentum=0.9",
           "--config.optim.weight_decay=0.0", "--config.train.num_epochs=3",
           "--config.train.refeed_steps=1", f"--config.optim.fused={fused}",
           f"--config.model.input_path={input_path}", "--verbosity=0"]
    env = {**os.environ, "JAX_NUM_CPU_DEVICES": "1", "JAX_PLATFORMS": "cpu"}
    out = subprocess.run(cmd, cwd=conftest.REPO, env=env, capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    assert ("optimizer update: native" in out.stderr) == fused
    results[fused] = json.loads((workdir / "results.json").read_text())
    rows = [json.loads(l) for l in (workdir / "metrics.jsonl").read_text().splitlines()]
    results[fused]["grad_norm"] = [r["train/grad_norm"] for r in rows if "epoch" in r]
  for key in ("test/rmse", "valid/rmse"):
    assert results[True][key] == pytest.approx(results[False][key], rel=1e-5), key
  np.testing.assert_allclose(results[True]["grad_norm"], results[False]["grad_norm"],
                             rtol=1e-4)


def _entries(rng, rows, cols, density, capacity):
  r, c = np.nonzero(rng.random((rows, cols)) < density)
  pad = capacity - len(r)
  return (jnp.asarray(np.concatenate([r, np.zeros(pad, int)]), jnp.int32),
          jnp.asarray(np.concatenate([c, np.zeros(pad, int)]), jnp.int32),
          jnp.asarray([len(r)], jnp.int32))


@pytest.mark.parametrize("rows,cols,width,density", [
    (9, 40, 16, 0.2),  # items without entries, one part
    (70, 300, 20, 0.5),  # above the threading threshold, a width not a multiple of 16
])
def test_an_entries_gradient_updates_like_the_gradient_it_stands_for(rows, cols, width,
                                                                     density):
  cfg = _sgd_config()
  tx, _ = optim.from_config(cfg, steps_per_epoch=3)
  per_update, _ = optim.learning_rate_fn(cfg, 3)
  fused = fused_sgd.FusedSgd(momentum=0.9, learning_rate=per_update)
  rng = np.random.default_rng(4)
  row, col, count = _entries(rng, rows, cols, density, capacity=rows * cols + 5)
  n = int(count[0])
  params = {"k": jnp.asarray(rng.normal(size=(cols, width)), jnp.float32),
            "b": jnp.asarray(rng.normal(size=(width,)), jnp.float32)}

  def built(coef, a):  # the [cols, width] gradient: sum of coef[e] * a[row[e]] at col[e]
    g = np.zeros((cols, width), np.float32)
    np.add.at(g, np.asarray(col[:n]), np.asarray(coef[:n])[:, None] * np.asarray(a)[row[:n]])
    return jnp.asarray(g)

  with_entries = jax.jit(lambda p, s, g, e: fused.apply(g, s, p, {"k": e}, after=g["b"]),
                         donate_argnums=(0, 1))
  two_factors = jax.jit(lambda p, s, g, e: fused.apply(g, s, p, {"k": e}))
  p3, s3 = jax.tree.map(jnp.copy, params), tx.init(params)  # p2's buffers are donated
  with_grads = jax.jit(lambda p, s, g: fused.apply(g, s, p))
  p1 = p2 = params
  s1 = s2 = tx.init(params)
  for _ in range(4):
    coef = jnp.asarray(rng.normal(size=row.shape), jnp.float32)
    a = jnp.asarray(rng.normal(size=(rows, width)), jnp.float32)
    b_grad = jnp.asarray(rng.normal(size=(width,)), jnp.float32)
    entries = fused_sgd.EntriesGradient(coef, a, row, col, count)
    p1, s1, n1 = with_grads(p1, s1, {"k": built(coef, a), "b": b_grad})
    # the "k" leaf of the gradient is never read
    p2, s2, n2 = with_entries(p2, s2, {"k": jnp.full((cols, width), jnp.nan), "b": b_grad},
                              entries)
    assert float(n2) == pytest.approx(float(n1), rel=1e-5)
    # the same gradient as the sum of two factors over the same entries
    halves = (entries._replace(coef=coef * 0.25), entries._replace(coef=coef * 0.75))
    p3, s3, _ = two_factors(p3, s3, {"k": jnp.full((cols, width), jnp.nan), "b": b_grad},
                            halves)
  for x, y, z in zip(jax.tree.leaves((p1, s1)), jax.tree.leaves((p2, s2)),
                     jax.tree.leaves((p3, s3))):
    np.testing.assert_allclose(x, y, rtol=1e-5, atol=1e-4)  # sums of ~40 terms ~20
    np.testing.assert_allclose(x, z, rtol=1e-5, atol=1e-4)
  with pytest.raises(ValueError, match="not in the model"):
    fused.apply({"k": p1["k"], "b": p1["b"]}, s1, p1, {"w": entries})


def _deferred_setup(tmp_path, **model_overrides):
  from autorec_jax.training import loop as train  # pylint: disable=import-outside-toplevel
  from autorec_jax.data.batching import CSRBatcher  # pylint: disable=import-outside-toplevel
  import scipy.sparse as sp  # pylint: disable=import-outside-toplevel
  rng = np.random.default_rng(7)
  csr = sp.random(60, 50, density=0.2, format="csr", random_state=rng, dtype=np.float32)
  csr.data = rng.normal(size=csr.nnz).astype(np.float32)
  batcher = CSRBatcher(csr, 16, seed=0, prefetch=0, entries=True, dense=True)
  batches = [{k: jnp.asarray(v) for k, v in b.items()} for b in batcher.train_batches(1)]
  model_cfg = base_config().model
  model_cfg.hidden = (12, 8)
  model_cfg.dropout = 0.3
  for k, v in model_overrides.items():
    setattr(model_cfg, k, v)
  return train, train.make_model(model_cfg, 50), batches


@pytest.mark.parametrize("refeed_steps,noise,output_activation,tied", [
    (0, False, False, False), (1, False, True, False), (1, True, False, False),
    (1, False, False, True)])
def test_deferred_kernel_gradients_train_exactly_like_built_ones(
    tmp_path, refeed_steps, noise, output_activation, tied):
  """The first and output kernels' gradients summed inside the update (never built)
  give the same parameters and optimizer state, bit for bit, as the built gradients;
  a tied kernel's two gradients too."""
  from autorec_jax.training import noise as noise_lib  # pylint: disable=import-outside-toplevel
  train, model, batches = _deferred_setup(tmp_path, output_activation=output_activation,
                                          tied=tied)
  cfg = _sgd_config()
  noise_cfg = noise_lib.NoiseConfig(masking=0.25) if noise else None
  results = []
  for deferred in (False, True):
    tx, _ = optim.from_config(cfg, 4, updates_per_step=1 + refeed_steps)
    per_update, _ = optim.learning_rate_fn(cfg, 4, updates_per_step=1 + refeed_steps)
    fused = fused_sgd.FusedSgd(momentum=0.9, learning_rate=per_update)
    step = jax.jit(train.make_train_step(
        model, tx, refeed_steps=refeed_steps, noise=noise_cfg, sparse_input=True,
        num_inputs=50,
        update=fused_sgd.make_update(fused, model, deferred_kernel_grads=deferred)),
                   donate_argnums=(0,))
    hlo = step.lower(train.init_state(model, tx, 50, jax.random.key(0)), batches[0],
                     jax.random.key(1)).as_text()
    assert ("AutorecSgdMomentumEntries" in hlo) == deferred
    state = train.init_state(model, tx, 50, jax.random.key(0))
    norms = []
    for i, batch in enumerate(batches * 2):
      state, metrics = step(state, batch, jax.random.key(i))
      norms.append(float(metrics["train/grad_norm"]))
    results.append((jax.device_get(state), norms))
  (built, built_norms), (deferred, deferred_norms) = results
  for x, y in zip(jax.tree.leaves(built), jax.tree.leaves(deferred)):
    np.testing.assert_array_equal(x, y)
  np.testing.assert_allclose(built_norms, deferred_norms, rtol=1e-5)


def test_entries_gradients_of_unequal_sizes_are_refused():
  cfg = _sgd_config()
  tx, _ = optim.from_config(cfg, steps_per_epoch=3)
  per_update, _ = optim.learning_rate_fn(cfg, 3)
  fused = fused_sgd.FusedSgd(momentum=0.9, learning_rate=per_update)
  row, col, count = _entries(np.random.default_rng(5), 6, 10, 0.5, capacity=64)
  params = {"k": jnp.ones((10, 4))}
  good = fused_sgd.EntriesGradient(jnp.ones(64), jnp.ones((6, 4)), row, col, count)
  bad = good._replace(a=jnp.ones((5, 4)))  # a second factor over other rows
  with pytest.raises(Exception, match="first factor's sizes"):
    jax.block_until_ready(fused.apply(params, tx.init(params), params, {"k": (good, bad)}))
