import jax
import jax.numpy as jnp
import numpy as np
import optax

from autorec_jax import checkpoint, train
from autorec_jax.models.autoencoder import AutoEncoder


def _state():
  model = AutoEncoder(hidden=(4,))
  return train.init_state(model, optax.adam(1e-3), 6, jax.random.key(0))


def test_keeps_best_and_latest_and_reopens(tmp_path):
  state = _state()
  manager = checkpoint.make_manager(str(tmp_path))
  for epoch, rmse in [(1, 0.95), (2, 0.90), (3, 0.93), (4, 0.97)]:
    bumped = state.replace(step=jnp.asarray(epoch, jnp.int32))
    checkpoint.save(manager, epoch, bumped, {"epoch": epoch}, {"valid/rmse": rmse})
  assert manager.all_steps() == [2, 4]
  reopened = checkpoint.make_manager(str(tmp_path))
  assert checkpoint.best_step(reopened) == 2
  assert checkpoint.latest_step(reopened) == 4
  restored, meta = checkpoint.restore(reopened, 2, state)
  assert meta == {"epoch": 2} and int(restored.step) == 2


def test_restore_round_trips_params_and_optax_state(tmp_path):
  state = _state()
  grads = jax.tree.map(jnp.ones_like, state.params)
  tx = optax.adam(1e-3)
  updates, opt_state = tx.update(grads, state.opt_state, state.params)
  state = state.replace(params=optax.apply_updates(state.params, updates),
                        opt_state=opt_state)
  manager = checkpoint.make_manager(str(tmp_path))
  checkpoint.save(manager, 1, state, {}, {"valid/rmse": 1.0})
  restored, _ = checkpoint.restore(manager, 1, _state())
  assert jax.tree.structure(restored) == jax.tree.structure(state)
  assert type(restored.opt_state[0]) is type(state.opt_state[0])  # NamedTuple kept
  for a, b in zip(jax.tree.leaves(restored), jax.tree.leaves(state)):
    np.testing.assert_array_equal(a, b)


def test_without_validation_the_latest_is_the_best(tmp_path):
  state = _state()
  manager = checkpoint.make_manager(str(tmp_path), keep_best=False)
  for epoch in (1, 2, 3):
    checkpoint.save(manager, epoch, state, {"epoch": epoch}, None)
  assert manager.all_steps() == [3]
  assert checkpoint.best_step(manager) == 3
