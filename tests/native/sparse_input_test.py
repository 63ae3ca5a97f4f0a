"""The native sparse first and output layers: equal to the dense products and their
gradients, the batcher's entry lists, the path choice, and training runs equal to
the dense ones."""

import json
import os
import subprocess
import sys

import numpy as np
import jax
import jax.numpy as jnp
import pytest
import scipy.sparse as sp

from autorec_jax.config import checks as config_checks
from autorec_jax.data.batching import CSRBatcher
from autorec_jax.models import sparse as sparse_ops
from autorec_jax.models.autoencoder import AutoEncoder
from autorec_jax.native import sparse_input
from autorec_jax.training import fast_path
from autorec_jax.training import loop as train
from configs import movielens_1m
from tests import conftest, synthetic


def _sparse_batch(rng, rows=9, cols=40, density=0.2, capacity=200):
  """A dense batch with an empty row, and its nonzeros as SparseRows."""
  x = np.where(rng.random((rows, cols)) < density,
               rng.normal(size=(rows, cols)), 0.0).astype(np.float32)
  x[3] = 0.0  # an empty row
  return jnp.asarray(x), sparse_input.SparseRows.from_dense(x, capacity)


def _entries(rows):
  return rows.row, rows.col, rows.count


def _needs_kernels():
  ok, why = sparse_input.available()
  if not ok and "no C++ compiler" in why:
    pytest.skip(why)  # the sparse path is optional; without a compiler it is refused
  assert ok, why


@pytest.fixture(autouse=True)
def kernels(request):
  if request.node.name not in ("test_a_missing_compiler_is_a_clear_error",
                               "test_an_unwritable_cache_is_a_clear_error",
                               "test_the_first_build_says_so_in_one_line",
                               "test_a_failed_build_is_reported_once_and_remembered"):
    _needs_kernels()


def test_forward_and_gradients_equal_the_dense_matmul():
  rng = np.random.default_rng(0)
  x, rows = _sparse_batch(rng)
  w = jnp.asarray(rng.normal(size=(40, 16)), jnp.float32)
  cot = jnp.asarray(rng.normal(size=(9, 16)), jnp.float32)
  np.testing.assert_allclose(sparse_input.sparse_input_matmul(rows, w), x @ w,
                             rtol=1e-5, atol=1e-5)

  def loss(val, w):
    return jnp.vdot(jnp.tanh(sparse_input.sparse_input_matmul(rows.replace(val=val), w)),
                    cot)

  sparse = jax.jit(jax.grad(loss, argnums=(0, 1)))(rows.val, w)
  dense = jax.grad(lambda x, w: jnp.vdot(jnp.tanh(x @ w), cot), argnums=(0, 1))(x, w)
  np.testing.assert_allclose(sparse[1], dense[1], rtol=1e-5, atol=1e-5)
  count = int(rows.count[0])
  # the values' gradient is the dense input gradient read at the entries
  np.testing.assert_allclose(sparse[0][:count], dense[0][rows.row[:count], rows.col[:count]],
                             rtol=1e-5, atol=1e-5)
  assert np.all(np.asarray(sparse[0])[count:] == 0.0)  # padding entries


def test_many_entries_use_threads_and_stay_exact():
  rng = np.random.default_rng(1)
  x, rows = _sparse_batch(rng, rows=64, cols=900, density=0.3, capacity=20000)
  assert int(rows.count[0]) > 8192  # above the kernels' threading threshold
  w = jnp.asarray(rng.normal(size=(900, 32)), jnp.float32)
  g = jnp.asarray(rng.normal(size=(64, 32)), jnp.float32)
  np.testing.assert_allclose(sparse_input.sparse_input_matmul(rows, w), x @ w,
                             rtol=1e-4, atol=1e-4)
  _, vjp = jax.vjp(lambda w: sparse_input.sparse_input_matmul(rows, w), w)
  np.testing.assert_allclose(vjp(g)[0], x.T @ g, rtol=1e-4, atol=1e-4)


def test_entries_in_any_order_and_long_runs_give_the_same_products():
  """The kernels sum runs of entries in registers (a row's entries within an item
  tile, an item's entries): entries listed out of row order, and runs longer than one
  register pass (32 entries), give the same products and gradients."""
  rng = np.random.default_rng(3)
  x, rows = _sparse_batch(rng, rows=70, cols=130, density=0.8, capacity=8000)
  count = int(rows.count[0])
  perm = np.concatenate([rng.permutation(count), np.arange(count, 8000)])
  shuffled = rows.replace(row=rows.row[perm], col=rows.col[perm], val=rows.val[perm])
  w = jnp.asarray(rng.normal(size=(130, 40)), jnp.float32)
  g = jnp.asarray(rng.normal(size=(70, 40)), jnp.float32)
  for r in (rows, shuffled):
    np.testing.assert_allclose(sparse_input.sparse_input_matmul(r, w), x @ w,
                               rtol=1e-4, atol=1e-4)
    _, vjp = jax.vjp(lambda w, r=r: sparse_input.sparse_input_matmul(r, w), w)
    np.testing.assert_allclose(vjp(g)[0], x.T @ g, rtol=1e-4, atol=1e-4)
    c = jnp.asarray(rng.normal(size=130), jnp.float32)
    np.testing.assert_allclose(
        sparse_input.sparse_output_matmul(g, w, c, *_entries(r)),
        _dense_at_entries(g, w, c, _entries(r)), rtol=1e-4, atol=1e-4)


def test_a_count_beyond_the_capacity_is_an_error_not_a_wild_read():
  rng = np.random.default_rng(2)
  _, rows = _sparse_batch(rng)
  w = jnp.ones((40, 4), jnp.float32)
  with pytest.raises(Exception, match="entry count outside"):
    jax.block_until_ready(sparse_input.sparse_input_matmul(
        rows.replace(count=jnp.asarray([10_000], jnp.int32)), w))
  with pytest.raises(Exception, match="unequal lengths"):  # values shorter than the lists
    jax.block_until_ready(sparse_input.sparse_input_matmul(
        rows.replace(val=rows.val[:10]), w))


def _dense_at_entries(h, v, c, entries):
  row, col, count = entries
  out = h @ v.T + c[None, :]
  return jnp.where(jnp.arange(row.shape[0]) < count[0], out[row, col], 0.0)


@pytest.mark.parametrize("shape", [
    dict(rows=9, cols=40, hidden=16, density=0.2, capacity=200),
    # several item tiles, the last one partial; a width not a multiple of 8; threads
    dict(rows=64, cols=150, hidden=13, density=0.9, capacity=9000),
])
def test_output_at_entries_and_its_gradients_equal_the_dense_product(shape):
  rng = np.random.default_rng(5)
  _, rows = _sparse_batch(rng, rows=shape["rows"], cols=shape["cols"],
                          density=shape["density"], capacity=shape["capacity"])
  entries = _entries(rows)
  if shape["capacity"] > 8192:
    assert int(entries[2][0]) > 8192  # above the kernels' threading threshold
  h = jnp.asarray(rng.normal(size=(shape["rows"], shape["hidden"])), jnp.float32)
  v = jnp.asarray(rng.normal(size=(shape["cols"], shape["hidden"])), jnp.float32)
  c = jnp.asarray(rng.normal(size=shape["cols"]), jnp.float32)
  cot = jnp.asarray(rng.normal(size=entries[0].shape), jnp.float32)

  def sparse(h, v, c):
    return sparse_input.sparse_output_matmul(h, v, c, *entries)

  def dense(h, v, c):
    return _dense_at_entries(h, v, c, entries)

  np.testing.assert_allclose(jax.jit(sparse)(h, v, c), dense(h, v, c), rtol=1e-4,
                             atol=1e-4)
  count = int(entries[2][0])
  assert np.all(np.asarray(sparse(h, v, c))[count:] == 0.0)  # padding entries
  got = jax.jit(jax.grad(lambda *a: jnp.vdot(jnp.tanh(sparse(*a)), cot),
                         argnums=(0, 1, 2)))(h, v, c)
  want = jax.grad(lambda *a: jnp.vdot(jnp.tanh(dense(*a)), cot), argnums=(0, 1, 2))(h, v, c)
  for g, w in zip(got, want):
    np.testing.assert_allclose(g, w, rtol=1e-4, atol=1e-4)


def test_the_output_layer_refuses_a_kernel_not_items_major():
  _, rows = _sparse_batch(np.random.default_rng(12))
  with pytest.raises(Exception, match="items-major"):
    jax.block_until_ready(sparse_input.sparse_output_matmul(
        jnp.ones((9, 4)), jnp.ones((4, 40)), jnp.ones(40), *_entries(rows)))


def test_the_output_layer_refuses_a_count_beyond_the_capacity():
  rng = np.random.default_rng(6)
  _, rows = _sparse_batch(rng)
  row, col = rows.row, rows.col
  with pytest.raises(Exception, match="entry count outside"):
    jax.block_until_ready(sparse_input.sparse_output_matmul(
        jnp.ones((9, 4)), jnp.ones((40, 4)), jnp.ones(40), row, col,
        jnp.asarray([10_000], jnp.int32)))


@pytest.mark.parametrize("bad", ["row", "col"])
def test_an_entry_outside_the_matrix_is_an_error_not_a_wild_access(bad):
  rng = np.random.default_rng(9)
  _, rows = _sparse_batch(rng)
  row, col, count = _entries(rows)
  if bad == "row":
    row = row.at[0].set(9)  # x has 9 rows
  else:
    col = col.at[0].set(40)  # and 40 columns
  with pytest.raises(Exception, match="outside the matrix"):
    jax.block_until_ready(sparse_input.sparse_input_matmul(
        rows.replace(row=row, col=col), jnp.ones((40, 4))))
  with pytest.raises(Exception, match="outside the matrix"):
    jax.block_until_ready(sparse_input.sparse_output_matmul(
        jnp.ones((9, 4)), jnp.ones((40, 4)), jnp.ones(40), row, col, count))


@pytest.mark.parametrize("tied", [False, True])
@pytest.mark.parametrize("output_activation", [False, True])
def test_model_outputs_at_entries_equal_the_dense_model(tied, output_activation):
  rng = np.random.default_rng(7)
  x, rows = _sparse_batch(rng)
  row, col, count = _entries(rows)
  valid = jnp.arange(row.shape[0]) < count[0]
  model = AutoEncoder(hidden=(8, 4), activation="selu", tied=tied,
                      output_activation=output_activation)
  params = model.init(jax.random.key(0), x, train=False)["params"]

  def apply(params, output):
    return model.apply({"params": params}, rows, train=False, output=output)

  dense = model.apply({"params": params}, x, train=False)
  at_entries = apply(params, "entries")
  np.testing.assert_allclose(at_entries, jnp.where(valid, dense[row, col], 0.0),
                             rtol=1e-5, atol=1e-5)
  both = apply(params, "entries+dense")
  np.testing.assert_allclose(both[0], at_entries, rtol=1e-6, atol=1e-6)
  np.testing.assert_allclose(both[1], dense, rtol=1e-5, atol=1e-5)

  # The gradient of a loss at the entries; in "entries+dense" the dense part adds none.
  def loss(params, output):
    pred = apply(params, output)
    if output == "entries+dense":
      pred = pred[0] + 0.0 * jnp.sum(pred[1])
    elif output == "dense":
      pred = jnp.where(valid, pred[row, col], 0.0)
    return jnp.sum(jnp.where(valid, (pred - 1.0) ** 2, 0.0))

  want = jax.grad(loss)(params, "dense")
  for output in ("entries", "entries+dense"):
    got = jax.jit(jax.grad(loss), static_argnums=1)(params, output)
    for g, w in zip(jax.tree.leaves(got), jax.tree.leaves(want)):
      np.testing.assert_allclose(g, w, rtol=1e-4, atol=1e-5)


def test_model_output_choice_is_checked():
  x, rows = _sparse_batch(np.random.default_rng(8))
  model = AutoEncoder(hidden=(4,))
  params = model.init(jax.random.key(0), x, train=False)["params"]
  with pytest.raises(ValueError, match="needs the input as SparseRows"):
    model.apply({"params": params}, x, train=False, output="entries")
  with pytest.raises(ValueError, match="must be one of"):
    model.apply({"params": params}, rows, train=False, output="sparse")


def test_deferred_kernel_gradients_come_from_the_perturbations():
  """With deferred_kernel_grads the outputs are unchanged, the two kernels get no
  gradient (the output layer's backward skips it), and x^T @ (gradient at x @ W) and
  G^T @ (last hidden layer) are the kernels' gradients."""
  from autorec_jax.models import autoencoder as ae  # pylint: disable=import-outside-toplevel
  rng = np.random.default_rng(11)
  x, rows = _sparse_batch(rng)
  row, col, count = _entries(rows)
  valid = jnp.arange(row.shape[0]) < count[0]
  model = AutoEncoder(hidden=(8, 4), activation="selu", output_activation=True)
  params = model.init(jax.random.key(0), x, train=False)["params"]
  perturbations = {ae.FIRST_LAYER_PRODUCT: jnp.zeros((9, 8)),
                   ae.OUTPUT_AT_ENTRIES: jnp.zeros(row.shape)}

  def loss(params, perturbations, deferred):
    variables = {"params": params, **({"perturbations": perturbations} if deferred else {})}
    pred, sown = model.apply(variables, rows, train=False, output="entries",
                             deferred_kernel_grads=deferred, mutable=["intermediates"])
    return jnp.sum(jnp.where(valid, (pred - 1.0) ** 2, 0.0)), sown

  want, _ = jax.grad(loss, has_aux=True)(params, perturbations, False)
  grad = jax.jit(jax.grad(loss, argnums=(0, 1), has_aux=True), static_argnums=2)
  (got, at), sown = grad(params, perturbations, True)
  hlo = grad.lower(params, perturbations, True).as_text()
  assert "AutorecSparseOutputBackwardNoKernel" in hlo and "WeightGrad" not in hlo
  out_name = ae.output_kernel_name((8, 4))
  for name in want:
    if name in (ae.INPUT_KERNEL, out_name):
      assert not np.any(got[name])
    else:
      np.testing.assert_allclose(got[name], want[name], rtol=1e-4, atol=1e-5)
  np.testing.assert_allclose(x.T @ at[ae.FIRST_LAYER_PRODUCT], want[ae.INPUT_KERNEL],
                             rtol=1e-4, atol=1e-5)
  g_at_entries = jnp.zeros((9, 40)).at[row, col].add(
      jnp.where(valid, at[ae.OUTPUT_AT_ENTRIES], 0.0))
  np.testing.assert_allclose(g_at_entries.T @ sown["intermediates"][ae.LAST_HIDDEN][0],
                             want[out_name], rtol=1e-4, atol=1e-5)
  with pytest.raises(ValueError, match="deferred_kernel_grads needs"):
    model.init(jax.random.key(0), rows, train=False, deferred_kernel_grads=True)


def test_model_with_entries_equals_the_dense_model():
  rng = np.random.default_rng(3)
  x, rows = _sparse_batch(rng)
  model = AutoEncoder(hidden=(8, 4), activation="selu")
  params = model.init(jax.random.key(0), x, train=False)["params"]
  np.testing.assert_allclose(model.apply({"params": params}, rows, train=False),
                             model.apply({"params": params}, x, train=False),
                             rtol=1e-5, atol=1e-5)


def test_batcher_lists_every_stored_entry_of_each_batch():
  rng = np.random.default_rng(4)
  dense = np.where(rng.random((50, 30)) < 0.2, rng.integers(1, 6, (50, 30)), 0)
  dense[7, 4] = 0
  r, c = np.nonzero(dense)
  r, c = np.append(r, 7), np.append(c, 4)  # a stored zero rating is an entry too
  matrix = sp.csr_matrix((dense[r, c].astype(np.float32), (r, c)), shape=dense.shape)
  batcher = CSRBatcher(matrix, 8, seed=0, prefetch=0, entries=True)
  lists_only = CSRBatcher(matrix, 8, seed=0, prefetch=0, entries=True, dense=False)
  assert batcher.entry_capacity == np.sort(matrix.getnnz(axis=1))[::-1][:8].sum()
  for batch, alone in zip(batcher.train_batches(1), lists_only.train_batches(1)):
    k = int(batch["entry_count"][0])
    row, col = batch["entry_row"][:k], batch["entry_col"][:k]
    np.testing.assert_array_equal(np.nonzero(batch["mask"]), (row, col))
    np.testing.assert_array_equal(batch["entry_val"][:k], batch["x"][row, col])
    assert np.all(batch["entry_val"][k:] == 0.0)
    assert np.all(np.diff(row) >= 0)
    assert batch["entry_row"].shape == (batcher.entry_capacity,)
    assert "x" not in alone and "mask" not in alone  # the lists are the whole batch
    for key in ("entry_row", "entry_col", "entry_val", "entry_count", "row_mask"):
      np.testing.assert_array_equal(alone[key], batch[key])
  with pytest.raises(ValueError, match="needs entries=True"):
    CSRBatcher(matrix, 8, seed=0, dense=False)


def test_resolve_checks_the_path_and_the_devices():
  assert sparse_input.resolve("dense", num_devices=8)[0] == "dense"
  assert sparse_input.resolve("sparse", num_devices=1)[0] == "sparse"
  with pytest.raises(sparse_input.KernelUnavailable, match="single device"):
    sparse_input.resolve("sparse", num_devices=8)
  with pytest.raises(ValueError, match="input_path"):
    sparse_input.resolve("fast", num_devices=1)


def test_auto_takes_the_sparse_path_only_for_sparse_data_on_one_device():
  limit = sparse_input.AUTO_MAX_DENSITY
  assert sparse_input.resolve("auto", num_devices=1, density=0.04)[0] == "sparse"
  assert sparse_input.resolve("auto", num_devices=1, density=limit)[0] == "sparse"
  path, why = sparse_input.resolve("auto", num_devices=1, density=limit * 1.01)
  assert path == "dense" and "density" in why
  path, why = sparse_input.resolve("auto", num_devices=8, density=0.04)
  assert path == "dense" and "8 devices" in why
  assert sparse_input.resolve("auto", num_devices=1, density=None)[0] == "dense"


def test_auto_without_a_compiler_falls_back_to_dense(monkeypatch):
  monkeypatch.setattr(sparse_input, "available", lambda: (False, "no C++ compiler found"))
  path, why = sparse_input.resolve("auto", num_devices=1, density=0.01)
  assert path == "dense" and "no C++ compiler" in why


def test_a_missing_compiler_is_a_clear_error(monkeypatch, tmp_path, capfd):
  monkeypatch.setenv("AUTOREC_CACHE_DIR", str(tmp_path))
  monkeypatch.setenv("CXX", "")
  monkeypatch.setattr(sparse_input.shutil, "which", lambda name: None)
  with pytest.raises(sparse_input.KernelUnavailable, match="no C.. compiler"):
    sparse_input.build()
  err = capfd.readouterr().err
  assert err.count("\n") == 1 and err.startswith("autorec_jax: no C++ compiler found")


def test_an_unwritable_cache_is_a_clear_error(monkeypatch, tmp_path):
  blocker = tmp_path / "file"
  blocker.write_text("")
  monkeypatch.setenv("AUTOREC_CACHE_DIR", str(blocker / "sub"))  # below a file
  monkeypatch.setenv("CXX", "never-run-c++")  # fails before compiling
  with pytest.raises(sparse_input.KernelUnavailable, match="AUTOREC_CACHE_DIR"):
    sparse_input.build()


def _fake_compiler(tmp_path, script: str) -> str:
  path = tmp_path / "fake-c++"
  path.write_text("#!/bin/sh\n" + script)
  path.chmod(0o755)
  return str(path)


def test_the_first_build_says_so_in_one_line(monkeypatch, tmp_path, capfd):
  monkeypatch.setenv("AUTOREC_CACHE_DIR", str(tmp_path / "cache"))
  # writes an empty library to the path after -o (the last argument)
  monkeypatch.setenv("CXX", _fake_compiler(tmp_path, 'for a; do out="$a"; done; : > "$out"\n'))
  path = sparse_input.build()
  err = capfd.readouterr().err
  assert err.count("\n") == 1 and err.startswith(
      "autorec_jax: building the native CPU kernels (native/kernels/sparse_input.cc) ... "
      "done in ")
  assert f"(cached in {tmp_path / 'cache' / 'kernels'})" in err
  assert sparse_input.build() == path
  assert capfd.readouterr().err == ""  # a cached build is silent


def test_a_failed_build_is_reported_once_and_remembered(monkeypatch, tmp_path, capfd):
  monkeypatch.setenv("AUTOREC_CACHE_DIR", str(tmp_path / "cache"))
  monkeypatch.setenv("CXX", _fake_compiler(
      tmp_path, 'echo "In file included from x.h:1," >&2\n'
      'echo "sparse_input.cc:9:1: error: something broke" >&2\nexit 1\n'))
  monkeypatch.setattr(sparse_input, "_registered", None)  # this process's outcome so far
  calls = []
  build = sparse_input.build
  monkeypatch.setattr(sparse_input, "build", lambda: calls.append(1) or build())
  ok, why = sparse_input.available()
  err = capfd.readouterr().err
  assert not ok and why.startswith("building the native CPU kernels failed: "
                                   "sparse_input.cc:9:1: error: something broke")
  assert "\n" not in why and err.count("\n") == 1 and "failed after" in err
  log = why.rsplit(" ", 1)[1]
  assert "something broke" in open(log, encoding="utf-8").read()
  # remembered: neither retried nor reported again; auto is dense, sparse the error
  assert sparse_input.available() == (False, why)
  assert sparse_input.resolve("auto", num_devices=1, density=0.01) == ("dense", f"auto: {why}")
  with pytest.raises(sparse_input.KernelUnavailable) as e:
    sparse_input.resolve("sparse", num_devices=1)
  assert str(e.value) == why
  with pytest.raises(config_checks.ConfigError, match="something broke"):
    fast_path.choose_input_path("sparse", num_devices=1, density=0.01)
  assert calls == [1] and capfd.readouterr().err == ""


def test_importing_the_native_path_registers_its_ops():
  assert sparse_ops.registered() == "native CPU kernels"
  assert sparse_input.SparseRows is sparse_ops.SparseRows
  assert fast_path.installed() and fast_path.sparse_ops_available() == (True, "")


def test_sparse_training_equals_dense_training(tmp_path):
  # One device (the tests' default is 8 fake ones): `main` in subprocesses.
  data = synthetic.write_ratings_csv(tmp_path / "r.csv", num_users=200, num_items=80,
                                     density=0.1)
  # With noise the batches are dense and listed; without, the lists alone.
  for refeed, noise in ((0, True), (1, True), (0, False), (1, False)):
    _same_results_dense_and_sparse(tmp_path / f"refeed{refeed}_{noise}", data, refeed,
                                   noise)


def _same_results_dense_and_sparse(tmp_path, data, refeed, noise):
  results = {}
  for path in ("dense", "sparse", "auto") if noise else ("dense", "sparse"):
    cmd = [sys.executable, "-m", "autorec_jax.main", "--config=configs/movielens_1m.py:tiny",
           f"--workdir={tmp_path / path}", "--config.data.name=csv",
           f"--config.data.path={data}", "--config.model.orientation=user",
           f"--config.model.input_path={path}", "--config.train.num_epochs=3",
           f"--config.train.refeed_steps={refeed}", "--verbosity=0"]  # INFO: the path
    if noise:  # noise keeps the input inside the entry lists; alpha != beta weighs them
      cmd += ["--config.noise.masking=0.2", "--config.loss.alpha=1.5"]
    env = {**os.environ, "JAX_NUM_CPU_DEVICES": "1", "JAX_PLATFORMS": "cpu"}
    out = subprocess.run(cmd, cwd=conftest.REPO, env=env, capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    # the train part is ~8% full (10% sampled, less the held-out parts): auto is sparse
    assert f"input path: {'sparse' if path == 'auto' else path} (" in out.stderr
    results[path] = json.loads((tmp_path / path / "results.json").read_text())
  for key in ("test/rmse", "valid/rmse"):
    assert results["sparse"][key] == pytest.approx(results["dense"][key], rel=1e-4), key
    if "auto" in results:
      assert results["auto"][key] == results["sparse"][key], key


def test_sparse_with_several_devices_is_a_config_error(tmp_path):
  data = synthetic.write_ratings_csv(tmp_path / "r.csv")
  cfg = movielens_1m.get_config("tiny")
  cfg.data.name, cfg.data.path = "csv", str(data)
  cfg.model.input_path = "sparse"
  with pytest.raises(config_checks.ConfigError, match="single device"):
    train.train_and_evaluate(cfg, str(tmp_path / "run"))

