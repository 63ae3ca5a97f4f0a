import jax.numpy as jnp
import numpy as np
import pytest

from autorec_jax.training import optim

def test_multistep_schedule_decays_at_epoch_boundaries():
  s = optim.make_schedule(learning_rate=0.1, schedule="multistep", steps_per_epoch=10,
                          decay_rate=0.5, decay_epochs=(2, 4))
  np.testing.assert_allclose([s(0), s(19), s(20), s(39), s(40)],
                             [0.1, 0.1, 0.05, 0.05, 0.025], rtol=1e-6)


def test_exponential_schedule_per_epoch():
  s = optim.make_schedule(learning_rate=1.0, schedule="exponential", steps_per_epoch=4,
                          decay_rate=0.5)
  np.testing.assert_allclose([s(0), s(4), s(8)], [1.0, 0.5, 0.25], rtol=1e-6)


@pytest.mark.parametrize("name", optim.OPTIMIZERS)
def test_every_optimizer_descends_a_quadratic(name):
  tx = optim.make_optimizer(name=name, learning_rate=0.05, momentum=0.9 if name == "sgd"
                            else 0.0)
  params = {"w_kernel": jnp.ones((2, 2)) * 3.0, "b": jnp.ones((2,))}
  state = tx.init(params)
  loss = lambda p: sum(jnp.sum(v ** 2) for v in p.values())
  import jax
  start = float(loss(params))
  for _ in range(20):
    g = jax.grad(loss)(params)
    updates, state = tx.update(g, state, params)
    params = jax.tree.map(lambda p, u: p + u, params, updates)
  assert float(loss(params)) < start


def test_weight_decay_touches_kernels_not_biases():
  import jax
  tx = optim.make_optimizer(name="sgd", learning_rate=1.0, weight_decay=0.1)
  params = {"k": jnp.ones((2, 2)), "b": jnp.ones((2,))}
  zeros = jax.tree.map(jnp.zeros_like, params)
  updates, _ = tx.update(zeros, tx.init(params), params)
  np.testing.assert_allclose(updates["k"], -0.1 * np.ones((2, 2)), rtol=1e-6)
  np.testing.assert_allclose(updates["b"], np.zeros(2))


def test_unknown_names_are_errors():
  with pytest.raises(ValueError, match="optim.name"):
    optim.make_optimizer(name="lbfgs", learning_rate=0.1)
  with pytest.raises(ValueError, match="optim.schedule"):
    optim.make_schedule(learning_rate=0.1, schedule="cosine", steps_per_epoch=1)


def test_inverse_time_schedule_per_epoch():
  s = optim.make_schedule(learning_rate=0.03, schedule="inverse_time", steps_per_epoch=10,
                          decay_rate=0.1)
  np.testing.assert_allclose([s(0), s(10), s(100)], [0.03, 0.03 / 1.1, 0.03 / 2.0], rtol=1e-6)


def test_schedule_counts_train_steps_when_a_step_makes_several_updates():
  from autorec_jax.config.schema import base_config
  cfg = base_config()
  cfg.optim.name = "sgd"
  cfg.optim.learning_rate = 1.0
  cfg.optim.schedule = "multistep"
  cfg.optim.decay_rate = 0.5
  cfg.optim.decay_epochs = (1,)
  tx, schedule = optim.from_config(cfg.optim, steps_per_epoch=2, updates_per_step=2)
  params = {"b": jnp.zeros(())}
  state = tx.init(params)
  lrs = []
  for _ in range(8):  # 4 train steps of 2 updates each
    updates, state = tx.update({"b": jnp.ones(())}, state, params)
    lrs.append(-float(updates["b"]))
  assert lrs == [1.0, 1.0, 1.0, 1.0, 0.5, 0.5, 0.5, 0.5]
  assert float(schedule(2)) == 0.5
