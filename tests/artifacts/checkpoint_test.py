import jax
import jax.numpy as jnp
import numpy as np
import optax

from autorec_jax.artifacts import checkpoint
from autorec_jax.models.autoencoder import AutoEncoder
from autorec_jax.training import step as train_step_lib


def _state():
  model = AutoEncoder(hidden=(4,))
  return train_step_lib.init_state(model, optax.adam(1e-3), 6, jax.random.key(0))


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
  assert meta == {"epoch": 2, "param_layout": checkpoint.PARAM_LAYOUT,
                  "state_crc32": checkpoint.digest(restored)}
  assert int(restored.step) == 2


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


def test_a_checkpoint_of_the_earlier_layout_restores_transposed(tmp_path):
  # Layout 1 stored the output kernel [w, n]: a checkpoint written so (no layout key
  # in meta) restores into today's [n, w] parameter and Adam slots, transposed, also
  # when the kernel is square (the shape alone could not tell).
  for n in (6, 4):
    model = AutoEncoder(hidden=(4,))
    state = train_step_lib.init_state(model, optax.adam(1e-3), n, jax.random.key(1))
    grads = jax.tree.map(jnp.ones_like, state.params)
    _, opt_state = optax.adam(1e-3).update(grads, state.opt_state, state.params)
    state = state.replace(opt_state=opt_state)
    old = jax.tree_util.tree_map_with_path(
        lambda p, x: x.T if "dec0_kernel" in jax.tree_util.keystr(p) else x, state)
    manager = checkpoint.make_manager(str(tmp_path / f"n{n}"), keep_best=False)
    manager.save(1, args=checkpoint.ocp.args.Composite(
        state=checkpoint.ocp.args.StandardSave(old),
        meta=checkpoint.ocp.args.JsonSave({"epoch": 1})))
    manager.wait_until_finished()
    restored, meta = checkpoint.restore(manager, 1, state)
    assert meta == {"epoch": 1}
    for a, b in zip(jax.tree.leaves(restored), jax.tree.leaves(state)):
      np.testing.assert_array_equal(a, b)
    x = jnp.asarray(np.random.default_rng(0).normal(size=(3, n)), jnp.float32)
    np.testing.assert_array_equal(model.apply({"params": restored.params}, x, train=False),
                                  model.apply({"params": state.params}, x, train=False))
