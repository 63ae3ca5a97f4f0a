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

from autorec_jax import fused_sgd, optim, sparse_input
from autorec_jax.config_schema import base_config
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


def test_training_with_the_fused_update_equals_optax(tmp_path):
  # One device, so `main` runs in subprocesses (the tests' default is 8 fake ones).
  data = synthetic.write_ratings_csv(tmp_path / "r.csv", num_users=150, num_items=60,
                                     density=0.15)
  results = {}
  for fused in (True, False):
    workdir = tmp_path / f"fused_{fused}"
    cmd = [sys.executable, "-m", "autorec_jax.main", "--config=configs/movielens_1m.py:tiny",
           f"--workdir={workdir}", "--config.data.name=csv", f"--config.data.path={data}",
           "--config.optim.name=sgd", "--config.optim.momentum=0.9",
           "--config.optim.weight_decay=0.0", "--config.train.num_epochs=3",
           "--config.train.refeed_steps=1", f"--config.optim.fused={fused}"]
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
