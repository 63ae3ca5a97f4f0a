import jax
import jax.numpy as jnp
import numpy as np
import pytest

from autorec_jax.runtime import parallel

def test_mesh_spans_all_devices():
  mesh = parallel.make_mesh()
  assert mesh.devices.size == jax.device_count() == 8


def test_to_global_splits_rows_over_devices():
  mesh = parallel.make_mesh()
  x = np.arange(16 * 3, dtype=np.float32).reshape(16, 3)
  g = parallel.to_global({"x": x}, parallel.data_sharded(mesh))["x"]
  assert g.shape == (16, 3)
  assert len(g.addressable_shards) == 8
  np.testing.assert_array_equal(np.asarray(g), x)


def test_reusing_a_host_buffer_right_after_the_transfer_is_safe():
  # Queue device work first so an asynchronous transfer would still be pending.
  mesh = parallel.make_mesh()
  sharding = parallel.data_sharded(mesh)
  busy = jax.jit(lambda a: (a @ a.T).sum())
  big = jnp.ones((1500, 1500))
  for _ in range(10):
    buf = np.ones((64, 500), np.float32)
    _ = [busy(big) for _ in range(2)]
    g = parallel.to_global({"x": buf}, sharding)["x"]
    buf[:] = 7.0
    assert float(g[0, 0]) == 1.0 and float(g[-1, -1]) == 1.0


def test_batch_size_must_divide_the_devices():
  parallel.check_batch_size(16)
  with pytest.raises(ValueError, match="train.batch_size=12 is not divisible by the 8"):
    parallel.check_batch_size(12)
