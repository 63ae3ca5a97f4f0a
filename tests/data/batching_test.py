"""Tests for autorec_jax.data.batching.CSRBatcher on tiny matrices."""

import gc
import threading
import time

import numpy as np
import pytest
import scipy.sparse as sp

from autorec_jax.data.batching import CSRBatcher

PREFETCH = [0, 1, 2]


def _matrix(num_rows=23, num_cols=7, seed=0):
  """Random ratings in 1..5 with some empty rows and some explicit stored zeros."""
  rng = np.random.default_rng(seed)
  dense = rng.integers(1, 6, (num_rows, num_cols)).astype(np.float32)
  keep = rng.random((num_rows, num_cols)) < 0.4
  keep[[2, 9, 15]] = False  # rows with no train ratings
  rows, cols = np.nonzero(keep)
  vals = dense[rows, cols]
  vals[::5] = 0.0  # a rating of exactly 0 is still a rating
  return sp.csr_matrix((vals, (rows, cols)), shape=(num_rows, num_cols))


def _dense_mask(m):
  mask = np.zeros(m.shape, np.float32)
  mask[np.repeat(np.arange(m.shape[0]), np.diff(m.indptr)), m.indices] = 1.0
  return mask


def _collect(it):
  """Copies every yielded dict (the batcher reuses its buffers)."""
  return [{k: v.copy() for k, v in b.items()} for b in it]


def _prefetch_threads():
  return [t for t in threading.enumerate() if t.name == "CSRBatcher-prefetch"]


def test_sizes_and_train_rows():
  m = _matrix()
  b = CSRBatcher(m, 8, seed=0, process_count=2, process_index=1)
  assert (b.num_rows, b.num_cols) == (23, 7)
  assert (b.batch_size, b.local_batch_size) == (8, 4)
  np.testing.assert_array_equal(b.train_rows, np.flatnonzero(np.diff(m.indptr) > 0))
  assert not {2, 9, 15} & set(b.train_rows.tolist())
  assert b.num_train_batches == -(-len(b.train_rows) // 8)


@pytest.mark.parametrize("prefetch", PREFETCH)
def test_every_train_row_once_with_its_data(prefetch):
  m = _matrix()
  dense, mask = m.toarray(), _dense_mask(m)
  b = CSRBatcher(m, 6, seed=1, prefetch=prefetch)
  batches = _collect(b.train_batches(0))
  assert len(batches) == b.num_train_batches
  seen = []
  for batch in batches:
    assert batch["x"].shape == batch["mask"].shape == (6, 7)
    assert batch["row_mask"].shape == (6,)
    for key in ("x", "mask", "row_mask"):
      assert batch[key].dtype == np.float32
    real = batch["row_mask"] == 1
    for x_I, mask_I in zip(batch["x"][real], batch["mask"][real]):
      # Identify the row by its observed-entry pattern and values.
      match = [r for r in b.train_rows
               if np.array_equal(mask[r], mask_I) and np.array_equal(dense[r], x_I)]
      assert match
      seen.append(match)
  assert len(seen) == len(b.train_rows)
  flat = sorted({r for m_ in seen for r in m_})
  np.testing.assert_array_equal(flat, b.train_rows)


def _order(batcher, epoch):
  """The rows of an epoch in order, read back via a row-id column."""
  return np.concatenate([b["x"][b["row_mask"] == 1, -1] for b in batcher.train_batches(epoch)])


def _id_matrix(num_rows=21, num_cols=4):
  """Every row stores its own (row id + 1) in the last column, so order is visible."""
  rows = np.repeat(np.arange(num_rows), 2)
  cols = np.tile([0, num_cols - 1], num_rows)
  vals = np.stack([np.zeros(num_rows), np.arange(num_rows) + 1.0], 1).ravel()
  return sp.csr_matrix((vals.astype(np.float32), (rows, cols)), shape=(num_rows, num_cols))


@pytest.mark.parametrize("prefetch", PREFETCH)
def test_padding_rows_are_zero(prefetch):
  m = _id_matrix()
  b = CSRBatcher(m, 8, seed=0, prefetch=prefetch)
  batches = _collect(b.train_batches(3))
  assert [int(x["row_mask"].sum()) for x in batches] == [8, 8, 5]
  last = batches[-1]
  np.testing.assert_array_equal(last["row_mask"], [1] * 5 + [0] * 3)
  assert not last["x"][5:].any() and not last["mask"][5:].any()


def test_order_depends_on_seed_and_epoch_only():
  m = _id_matrix()
  a = CSRBatcher(m, 4, seed=5, prefetch=0)
  b = CSRBatcher(m, 4, seed=5, prefetch=2)
  order = _order(a, 0)
  np.testing.assert_array_equal(np.sort(order), np.arange(1, 22))
  np.testing.assert_array_equal(order, _order(b, 0))
  np.testing.assert_array_equal(order, _order(a, 0))
  assert not np.array_equal(order, _order(a, 1))
  assert not np.array_equal(order, _order(CSRBatcher(m, 4, seed=6), 0))
  expected = np.random.default_rng([5, 0]).permutation(21) + 1
  np.testing.assert_array_equal(order, expected)


@pytest.mark.parametrize("process_count", [2, 4])
def test_process_slices_partition_global_batches(process_count):
  m = _matrix(num_rows=37)
  whole = _collect(CSRBatcher(m, 8, seed=2, prefetch=0).train_batches(1))
  parts = [_collect(CSRBatcher(m, 8, seed=2, process_index=p, process_count=process_count,
                               prefetch=1).train_batches(1))
           for p in range(process_count)]
  for n, batch in enumerate(whole):
    for key in ("x", "mask", "row_mask"):
      joined = np.concatenate([parts[p][n][key] for p in range(process_count)])
      np.testing.assert_array_equal(joined, batch[key])
  ids = [_order(CSRBatcher(_id_matrix(), 8, seed=2, process_index=p,
                           process_count=process_count), 4) for p in range(process_count)]
  all_ids = np.concatenate(ids)
  assert len(all_ids) == len(set(all_ids.tolist())) == 21


@pytest.mark.parametrize("prefetch", PREFETCH)
def test_explicit_zero_ratings_are_observed(prefetch):
  m = sp.csr_matrix((np.array([0.0, 3.0, 0.0], np.float32), np.array([1, 2, 0]),
                     np.array([0, 2, 2, 3])), shape=(3, 4))
  batch = next(iter(CSRBatcher(m, 4, seed=0, prefetch=prefetch).train_batches(0)))
  real = batch["row_mask"] == 1
  got = sorted((tuple(k), tuple(x)) for k, x in zip(batch["mask"][real], batch["x"][real]))
  assert got == [((0, 1, 1, 0), (0, 0, 3, 0)),   # row 0: a stored 0 and a 3
                 ((1, 0, 0, 0), (0, 0, 0, 0))]   # row 2: only a stored 0


@pytest.mark.parametrize("prefetch", PREFETCH)
@pytest.mark.parametrize("process_count", [1, 2])
def test_eval_batches_pair_train_input_with_targets(prefetch, process_count):
  train, target = _matrix(seed=1), _matrix(seed=2)
  target = sp.csr_matrix(target.multiply(np.arange(23)[:, None] % 3 != 0))  # keeps 0s
  target.eliminate_zeros()
  target.data[::4] = 0.0  # explicit zero targets are real targets
  want_rows = np.flatnonzero(np.diff(target.indptr) > 0)
  got = []
  for p in range(process_count):
    b = CSRBatcher(train, 4, seed=0, process_index=p, process_count=process_count,
                   prefetch=prefetch)
    assert b.num_eval_batches(target) == -(-len(want_rows) // 4)
    np.testing.assert_array_equal(b.eval_rows(target), want_rows)
    got.append(_collect(b.eval_batches(target)))
  dense_x, dense_t, mask_t = train.toarray(), target.toarray(), _dense_mask(target)
  all_rows = []
  for n in range(len(got[0])):
    batch = {k: np.concatenate([g[n][k] for g in got]) for k in got[0][n]}
    assert batch["x"].shape == batch["target"].shape == batch["target_mask"].shape == (4, 7)
    assert batch["rows"].dtype == np.int64
    real = batch["rows"] >= 0
    np.testing.assert_array_equal(batch["row_mask"], real.astype(np.float32))
    rows = batch["rows"][real]
    np.testing.assert_array_equal(batch["x"][real], dense_x[rows])
    np.testing.assert_array_equal(batch["target"][real], dense_t[rows])
    np.testing.assert_array_equal(batch["target_mask"][real], mask_t[rows])
    for key in ("x", "target", "target_mask"):
      assert not batch[key][~real].any()
    all_rows.append(rows)
  np.testing.assert_array_equal(np.concatenate(all_rows), want_rows)  # ascending, once


def test_prefetch_thread_reraises_errors():
  b = CSRBatcher(_matrix(), 2, seed=0, prefetch=2)
  calls = {"n": 0}
  real_scatter = b._scatter

  def flaky(*args):
    calls["n"] += 1
    if calls["n"] == 3:
      raise RuntimeError("densify failed")
    return real_scatter(*args)

  b._scatter = flaky
  it = b.train_batches(0)
  taken = 0
  with pytest.raises(RuntimeError, match="densify failed"):
    for _ in it:
      taken += 1
  assert taken == 2  # batches before the failure still arrive, in order
  gc.collect()
  assert not _prefetch_threads()


@pytest.mark.parametrize("prefetch", [1, 2])
def test_breaking_early_does_not_leak_thread(prefetch):
  b = CSRBatcher(_id_matrix(num_rows=40), 2, seed=0, prefetch=prefetch)
  for _ in range(3):
    for _ in b.train_batches(0):
      time.sleep(0.01)  # let the thread fill the ring and block
      break
    it = b.eval_batches(_id_matrix(num_rows=40))
    next(it)
    time.sleep(0.01)
    del it
  gc.collect()
  assert not _prefetch_threads()
  np.testing.assert_array_equal(np.sort(_order(b, 0)), np.arange(1, 41))  # still usable


@pytest.mark.parametrize("prefetch", [0, 1, 2, 3])
def test_buffer_ring_contract(prefetch):
  """A dict stays intact while `prefetch` further dicts are taken, however far ahead
  the thread has run; buffers really are reused afterwards (so the check has teeth)."""
  b = CSRBatcher(_id_matrix(num_rows=30), 1, seed=0, prefetch=prefetch)
  it = b.train_batches(0)
  held = next(it)
  snapshot = {k: v.copy() for k, v in held.items()}
  later = []
  for _ in range(prefetch):
    later.append(next(it))
    time.sleep(0.02)  # the thread runs as far ahead as it is allowed to
    for k in held:
      np.testing.assert_array_equal(held[k], snapshot[k])
  later.append(next(it))  # the (prefetch+1)-th further dict: `held` may now change
  reused = [d for d in later + [next(it) for _ in range(prefetch + 1)]
            if np.shares_memory(d["x"], held["x"])]
  assert reused, "the ring should recycle buffers"
  it.close()


def test_new_epoch_does_not_overwrite_held_dicts():
  b = CSRBatcher(_id_matrix(num_rows=5), 1, seed=0, prefetch=1)
  last = list(b.train_batches(0))[-1]
  snapshot = last["x"].copy()
  _collect(b.train_batches(1))
  np.testing.assert_array_equal(last["x"], snapshot)


def test_accepts_other_formats_and_dtypes():
  m = _matrix()
  expected = _collect(CSRBatcher(m, 5, seed=0).train_batches(0))
  for other in (m.tocoo(), m.astype(np.float64), sp.csr_array(m)):
    got = _collect(CSRBatcher(other, 5, seed=0).train_batches(0))
    for e, g in zip(expected, got):
      for k in e:
        np.testing.assert_array_equal(e[k], g[k])
        assert g[k].dtype == np.float32


def test_empty_matrix_yields_nothing():
  b = CSRBatcher(sp.csr_matrix((3, 4), dtype=np.float32), 2, seed=0)
  assert b.num_train_batches == 0
  assert list(b.train_batches(0)) == []
  assert list(b.eval_batches(sp.csr_matrix((3, 4)))) == []


def test_rejects_duplicates_and_mismatched_target():
  dup = sp.csr_matrix((np.ones(2, np.float32), np.array([1, 1]), np.array([0, 2])),
                      shape=(1, 3))
  with pytest.raises(ValueError, match="duplicate"):
    CSRBatcher(dup, 1, seed=0)
  b = CSRBatcher(_matrix(), 4, seed=0)
  with pytest.raises(ValueError, match="shape"):
    b.eval_batches(_matrix(num_cols=8))
  with pytest.raises(TypeError, match="scipy.sparse"):
    CSRBatcher(np.ones((2, 2)), 1, seed=0)


@pytest.mark.parametrize("kwargs, match", [
    (dict(batch_size=0), "batch_size"),
    (dict(batch_size=6, process_count=4), "divisible"),
    (dict(process_index=2, process_count=2), "process_index"),
    (dict(process_count=0), "process_count"),
    (dict(prefetch=-1), "prefetch"),
    (dict(seed=-1), "seed"),
])
def test_argument_errors(kwargs, match):
  args = dict(batch_size=4, seed=0)
  args.update(kwargs)
  with pytest.raises(ValueError, match=match):
    CSRBatcher(_matrix(), args.pop("batch_size"), **args)
  with pytest.raises(ValueError, match="epoch"):
    CSRBatcher(_matrix(), 4, seed=0).train_batches(-1)


def test_start_batch_skips_the_first_batches_of_the_same_order():
  m = sp.random(50, 7, density=0.4, format="csr", random_state=1, dtype=np.float32)
  b = CSRBatcher(m, 8, seed=3, prefetch=0)
  full = [x["x"].copy() for x in b.train_batches(2)]
  tail = [x["x"].copy() for x in b.train_batches(2, start_batch=3)]
  assert len(tail) == len(full) - 3
  for a, c in zip(full[3:], tail):
    np.testing.assert_array_equal(a, c)
  assert list(b.train_batches(2, start_batch=len(full))) == []
