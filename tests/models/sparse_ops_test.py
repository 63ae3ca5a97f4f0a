"""The model's sparse-ops seam (autorec_jax.models.sparse) on its own: SparseRows, the
clear error with no implementation registered, and the model's sparse path with a
plain-JAX implementation registered in place of the native kernels."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from autorec_jax.models import sparse
from autorec_jax.models.autoencoder import AutoEncoder


def _sparse_batch(rng, rows=9, cols=40, density=0.2, capacity=200):
  """A dense batch with an empty row, and its nonzeros as SparseRows."""
  x = np.where(rng.random((rows, cols)) < density,
               rng.normal(size=(rows, cols)), 0.0).astype(np.float32)
  x[3] = 0.0  # an empty row
  return jnp.asarray(x), sparse.SparseRows.from_dense(x, capacity)


def _reference_input_matmul(x, w):
  return x.todense() @ w


def _reference_output_matmul(h, v, c, row, col, count):
  out = h.astype(jnp.float32) @ v.T + c[None, :]
  return jnp.where(jnp.arange(row.shape[0]) < count[0], out[row, col], 0.0)


@pytest.fixture
def reference_ops(monkeypatch):
  """The plain-JAX ops registered for one test (the previous registration restored)."""
  monkeypatch.setattr(sparse, "_ops", None)
  sparse.register("reference", _reference_input_matmul, _reference_output_matmul)


def test_sparse_rows_round_trip_and_mark_the_padding():
  x, rows = _sparse_batch(np.random.default_rng(10))
  np.testing.assert_array_equal(rows.todense(), x)
  count = int(rows.count[0])
  assert rows.row.shape == (200,) and count == int(np.count_nonzero(x))
  np.testing.assert_array_equal(rows.valid(), np.arange(200) < count)
  empty = sparse.SparseRows.from_dense(np.zeros((2, 3)), 4)
  assert int(empty.count[0]) == 0 and empty.shape == (2, 3)


def test_without_registered_ops_sparse_rows_are_a_one_line_error(monkeypatch):
  monkeypatch.setattr(sparse, "_ops", None)
  assert sparse.registered() is None
  x, rows = _sparse_batch(np.random.default_rng(0))
  model = AutoEncoder(hidden=(8, 4))
  params = model.init(jax.random.key(0), x, train=False)["params"]  # dense: no ops needed
  with pytest.raises(sparse.SparseOpsUnavailable, match="model.input_path=dense") as e:
    model.apply({"params": params}, rows, train=False)
  assert "\n" not in str(e.value)
  with pytest.raises(sparse.SparseOpsUnavailable):
    sparse.output_matmul(jnp.ones((9, 4)), jnp.ones((40, 4)), jnp.ones(40), rows.row,
                         rows.col, rows.count)


@pytest.mark.parametrize("tied", [False, True])
def test_the_model_runs_whichever_ops_are_registered(reference_ops, tied):
  del reference_ops
  assert sparse.registered() == "reference"
  x, rows = _sparse_batch(np.random.default_rng(7))
  row, col, count = rows.row, rows.col, rows.count
  valid = jnp.arange(row.shape[0]) < count[0]
  model = AutoEncoder(hidden=(8, 4), tied=tied, output_activation=True)
  params = model.init(jax.random.key(0), x, train=False)["params"]
  dense = model.apply({"params": params}, x, train=False)
  np.testing.assert_allclose(model.apply({"params": params}, rows, train=False), dense,
                             rtol=1e-5, atol=1e-5)
  at_entries = model.apply({"params": params}, rows, train=False, output="entries")
  np.testing.assert_allclose(at_entries, jnp.where(valid, dense[row, col], 0.0),
                             rtol=1e-5, atol=1e-5)

  def loss(params, inputs, output):
    pred = model.apply({"params": params}, inputs, train=False, output=output)
    if output == "dense":
      pred = pred[row, col]
    return jnp.sum(jnp.where(valid, (pred - 1.0) ** 2, 0.0))

  want = jax.grad(loss)(params, x, "dense")
  got = jax.grad(loss)(params, rows, "entries")
  for g, w in zip(jax.tree.leaves(got), jax.tree.leaves(want)):
    np.testing.assert_allclose(g, w, rtol=1e-4, atol=1e-5)
