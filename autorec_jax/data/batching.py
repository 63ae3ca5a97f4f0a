"""Host-side minibatches from a sparse ratings matrix: shuffle, slice, densify, pad.

The CSR matrix never goes to the device; only fixed-shape dense minibatches do. Rows
are examples (users for U-AutoRec, items for I-AutoRec), columns the input width I.
Each batch carries an explicit observed-entry mask taken from the CSR *structure*,
because a known rating can be exactly 0 (Jester, or after scaling / bias removal), so
`x != 0` is not a mask. The final partial batch is padded with zero rows and
`row_mask = 0`, so shapes never change and nothing recompiles.

Multi-process: every process draws the same permutation from
`np.random.default_rng([seed, epoch])`, cuts the same global batches, and keeps its
own contiguous slice of `local_batch_size` rows of each.

Consumer contract: yielded dicts hold numpy arrays that live in a ring of reused
buffers. Each dict is valid until `prefetch + 1` further dicts have been taken from
the same iterator (a sync batcher, prefetch=0, reuses the buffer on the next take).
Hand it to JAX (which copies it) or copy it before then.
"""

from __future__ import annotations

import threading
from typing import Callable, Iterator

import numpy as np
import scipy.sparse as sp


def _check_int(name: str, value, low: int) -> int:
  if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
    raise ValueError(f"{name} must be an int >= {low}, got {value!r}")
  return int(value)


def _as_csr(name: str, matrix) -> sp.csr_matrix:
  """Float32 CSR copy-free where possible; rejects duplicate entries, keeps zeros."""
  if not sp.issparse(matrix) or len(matrix.shape) != 2:
    raise TypeError(f"{name} must be a 2-D scipy.sparse matrix, got {type(matrix).__name__}")
  csr = sp.csr_matrix(matrix)  # .tocsr() sums duplicates of COO input; keeps zeros
  if csr.dtype != np.float32:
    csr = csr.astype(np.float32)
  if not csr.has_canonical_format:
    csr = csr.copy()
    csr.sort_indices()
    row_N = np.repeat(np.arange(csr.shape[0]), np.diff(csr.indptr))
    if np.any((np.diff(csr.indices) == 0) & (np.diff(row_N) == 0)):
      raise ValueError(f"{name} has duplicate (row, column) entries; resolve them "
                       "before batching (they would silently be overwritten)")
  return csr


class _Slot:
  """One ring entry: the output arrays and the flat positions last written per source."""

  def __init__(self, arrays: dict[str, np.ndarray]):
    self.arrays = arrays
    self.written: dict[str, np.ndarray] = {}


class _Handoff:
  """Counters shared by the prefetch thread and the consumer, guarded by `cv`."""

  def __init__(self):
    self.cv = threading.Condition()
    self.produced = 0
    self.taken = 0
    self.stop = False
    self.error: BaseException | None = None


def _produce(hand: _Handoff, slots: list[_Slot], fill: Callable[[_Slot, int], None],
             num_batches: int, prefetch: int) -> None:
  """Background loop: fills batch n once fewer than `prefetch` batches wait untaken."""
  try:
    for n in range(num_batches):
      with hand.cv:
        while n - hand.taken >= prefetch and not hand.stop:
          hand.cv.wait()
        if hand.stop:
          return
      fill(slots[n % len(slots)], n)
      with hand.cv:
        hand.produced = n + 1
        hand.cv.notify_all()
  except BaseException as e:  # re-raised in the consumer, which owns the error
    with hand.cv:
      hand.error = e
      hand.cv.notify_all()


class CSRBatcher:
  """Dense, fixed-shape minibatches of the rows of a train CSR matrix.

  Args:
    matrix: train ratings, rows = examples, columns = input width I (see
      `Ratings.to_csr`). Stored entries are observed ratings, zeros included.
    batch_size: global batch size (rows over all processes).
    seed: shuffling seed; epoch e uses `np.random.default_rng([seed, e])`.
    process_index, process_count: this process's slice of every global batch.
    prefetch: batches prepared ahead on a daemon thread (0: synchronous).
    entries: train batches also list their stored entries (for the sparse input
      path, autorec_jax.native.sparse_input): "entry_row", "entry_col" int32[entry_capacity]
      (row within the local batch, column; rows ascending; padding repeats the last
      entry), "entry_val" float32[entry_capacity] (the ratings; padding 0) and
      "entry_count" int32[1].
    dense: train batches hold the dense "x" and "mask" (False needs `entries`: the
      lists are then the whole batch, and no [B_local, I] array is built or sent).
  """

  def __init__(self, matrix: sp.csr_matrix, batch_size: int, *, seed: int,
               process_index: int = 0, process_count: int = 1, prefetch: int = 2,
               entries: bool = False, dense: bool = True):
    self._csr = _as_csr("matrix", matrix)
    self.batch_size = _check_int("batch_size", batch_size, 1)
    self.seed = _check_int("seed", seed, 0)
    self.process_count = _check_int("process_count", process_count, 1)
    self.process_index = _check_int("process_index", process_index, 0)
    self.prefetch = _check_int("prefetch", prefetch, 0)
    if self.process_index >= self.process_count:
      raise ValueError(f"process_index must be in [0, {self.process_count}), "
                       f"got {self.process_index}")
    if self.batch_size % self.process_count:
      raise ValueError(f"batch_size ({self.batch_size}) must be divisible by "
                       f"process_count ({self.process_count})")
    self.local_batch_size = self.batch_size // self.process_count
    self.num_rows, self.num_cols = self._csr.shape
    self._indptr = self._csr.indptr.astype(np.int64)
    self.train_rows = np.flatnonzero(np.diff(self._indptr) > 0).astype(np.int64)
    self.num_train_batches = -(-len(self.train_rows) // self.batch_size)
    self.entries = bool(entries)
    self.dense = bool(dense)
    if not (self.dense or self.entries):
      raise ValueError("a batcher without dense batches needs entries=True")
    # The most entries any local batch can hold: its rows' largest counts summed.
    counts = np.sort(np.diff(self._indptr))[::-1]
    self.entry_capacity = max(int(counts[:self.local_batch_size].sum()), 1)


  @property
  def matrix(self) -> sp.csr_matrix:
    """The CSR matrix whose rows this batcher serves."""
    return self._csr
  def train_batches(self, epoch: int, start_batch: int = 0
                    ) -> Iterator[dict[str, np.ndarray]]:
    """One shuffled epoch over `train_rows`, each row exactly once.

    Yields {"x": f32[B_local, I], "mask": f32[B_local, I], "row_mask": f32[B_local]}
    (without "x" and "mask" when not `dense`; with the entry lists when `entries`);
    padding rows (only in the last batch) are all zero with row_mask 0. `start_batch`
    skips the epoch's first batches without building them (resuming mid-epoch).
    """
    epoch = _check_int("epoch", epoch, 0)
    start_batch = _check_int("start_batch", start_batch, 0)
    order_N = np.random.default_rng([self.seed, epoch]).permutation(self.train_rows)
    B, I = self.local_batch_size, self.num_cols

    def new_slot():
      arrays = {"row_mask": np.zeros((B,), np.float32)}
      if self.dense:
        arrays.update(x=np.zeros((B, I), np.float32), mask=np.zeros((B, I), np.float32))
      if self.entries:
        arrays.update(entry_row=np.zeros((self.entry_capacity,), np.int32),
                      entry_col=np.zeros((self.entry_capacity,), np.int32),
                      entry_val=np.zeros((self.entry_capacity,), np.float32),
                      entry_count=np.zeros((1,), np.int32))
      return _Slot(arrays)

    def fill(slot, n):
      rows = self._local_rows(order_N, start_batch + n)
      a = slot.arrays
      if self.dense:
        flat, pos = self._scatter(slot, "x", self._csr, rows, a["x"], a["mask"])
      else:
        flat, pos = self._positions(self._csr, rows)
      a["row_mask"].fill(0.0)
      a["row_mask"][:len(rows)] = 1.0
      if self.entries:  # row-major positions: rows ascend with them
        k = len(flat)
        np.floor_divide(flat, I, out=a["entry_row"][:k], casting="unsafe")
        np.remainder(flat, I, out=a["entry_col"][:k], casting="unsafe")
        np.take(self._csr.data, pos, out=a["entry_val"][:k])
        a["entry_val"][k:] = 0.0
        if k:
          a["entry_row"][k:] = a["entry_row"][k - 1]
          a["entry_col"][k:] = a["entry_col"][k - 1]
        a["entry_count"][0] = k

    return self._pipeline(max(self.num_train_batches - start_batch, 0), new_slot, fill)

  def eval_rows(self, target: sp.csr_matrix) -> np.ndarray:
    """int64 rows with at least one stored entry in `target`, ascending."""
    target = self._check_target(target)
    return np.flatnonzero(np.diff(target.indptr) > 0).astype(np.int64)

  def num_eval_batches(self, target: sp.csr_matrix) -> int:
    """How many batches `eval_batches(target)` yields."""
    return -(-len(self.eval_rows(target)) // self.batch_size)

  def eval_batches(self, target: sp.csr_matrix, *,
                   with_train_mask: bool = False) -> Iterator[dict[str, np.ndarray]]:
    """Train input paired with held-out targets, for rows with a target, in order.

    `target` has the train matrix's shape and holds the held-out ratings. Yields
    {"x": f32[B_local, I] (train input), "target": f32[B_local, I], "target_mask":
    f32[B_local, I], "row_mask": f32[B_local], "rows": int64[B_local] (-1: padding)},
    plus "mask" (the train input's observed entries) when `with_train_mask`, e.g. to
    keep already-rated items out of a ranking.
    """
    target = self._check_target(target)
    rows_N = np.flatnonzero(np.diff(target.indptr) > 0).astype(np.int64)
    B, I = self.local_batch_size, self.num_cols

    def new_slot():
      extra = {"mask": np.zeros((B, I), np.float32)} if with_train_mask else {}
      return _Slot({"x": np.zeros((B, I), np.float32), **extra,
                    "target": np.zeros((B, I), np.float32),
                    "target_mask": np.zeros((B, I), np.float32),
                    "row_mask": np.zeros((B,), np.float32),
                    "rows": np.full((B,), -1, np.int64)})

    def fill(slot, n):
      rows = self._local_rows(rows_N, n)
      a = slot.arrays
      self._scatter(slot, "x", self._csr, rows, a["x"], a.get("mask"))
      self._scatter(slot, "target", target, rows, a["target"], a["target_mask"])
      a["row_mask"].fill(0.0)
      a["row_mask"][:len(rows)] = 1.0
      a["rows"].fill(-1)
      a["rows"][:len(rows)] = rows

    return self._pipeline(-(-len(rows_N) // self.batch_size), new_slot, fill)

  def _check_target(self, target) -> sp.csr_matrix:
    target = _as_csr("target", target)
    if target.shape != self._csr.shape:
      raise ValueError(f"target shape {target.shape} differs from the train matrix "
                       f"shape {self._csr.shape}; build both with the same orientation")
    return target

  def _local_rows(self, rows_N: np.ndarray, n: int) -> np.ndarray:
    """This process's real rows of global batch n (padding is whatever is missing)."""
    start = n * self.batch_size + self.process_index * self.local_batch_size
    return rows_N[start:start + self.local_batch_size]

  def _positions(self, csr: sp.csr_matrix, rows: np.ndarray
                 ) -> tuple[np.ndarray, np.ndarray]:
    """(row-major positions in a [len(rows), I] batch, positions in `csr.data`) of
    the stored entries of `rows`, in row order."""
    indptr = csr.indptr
    starts = indptr[rows].astype(np.int64)
    lens = indptr[rows + 1].astype(np.int64) - starts
    ends = np.cumsum(lens)
    pos = np.arange(int(ends[-1]) if len(ends) else 0, dtype=np.int64)
    pos += np.repeat(starts - (ends - lens), lens)
    flat = np.repeat(np.arange(len(rows), dtype=np.int64) * self.num_cols, lens)
    flat += csr.indices[pos]
    return flat, pos

  def _scatter(self, slot: _Slot, source: str, csr: sp.csr_matrix, rows: np.ndarray,
               values_BxI: np.ndarray, mask_BxI: np.ndarray | None
               ) -> tuple[np.ndarray, np.ndarray]:
    """Writes rows of `csr` densely into the first len(rows) rows of the buffers;
    returns what `_positions` returns.

    Only the entries written last time into this slot are cleared (not the whole
    buffer), which matters for wide, sparse inputs; padding rows stay zero. A numpy
    scatter from indptr/indices measured ~30% faster than `csr[rows].toarray(out=)`.
    """
    values_flat, mask_flat = values_BxI.reshape(-1), None
    if mask_BxI is not None:
      mask_flat = mask_BxI.reshape(-1)
    old = slot.written.get(source)
    if old is not None:
      values_flat[old] = 0.0
      if mask_flat is not None:
        mask_flat[old] = 0.0
    flat, pos = self._positions(csr, rows)
    values_flat[flat] = csr.data[pos]
    if mask_flat is not None:
      mask_flat[flat] = 1.0
    slot.written[source] = flat
    return flat, pos

  def _pipeline(self, num_batches: int, new_slot: Callable[[], _Slot],
                fill: Callable[[_Slot, int], None]) -> Iterator[dict[str, np.ndarray]]:
    """Yields the filled slots in order, `prefetch` ahead on a daemon thread.

    Ring size 2 * prefetch + 1: the consumer may hold the current dict and the
    `prefetch` before it while the thread fills up to `prefetch` more. Buffers are
    per iterator, so a dict held from an earlier epoch is never overwritten.
    """
    if self.prefetch == 0:
      slot = new_slot()
      for n in range(num_batches):
        fill(slot, n)
        yield dict(slot.arrays)
      return
    slots = [new_slot() for _ in range(2 * self.prefetch + 1)]
    hand = _Handoff()
    thread = threading.Thread(target=_produce, name="CSRBatcher-prefetch", daemon=True,
                              args=(hand, slots, fill, num_batches, self.prefetch))
    thread.start()
    try:
      for n in range(num_batches):
        with hand.cv:
          while hand.produced <= n and hand.error is None:
            hand.cv.wait()
          if hand.produced <= n:
            raise hand.error
          hand.taken = n + 1
          hand.cv.notify_all()
        yield dict(slots[n % len(slots)].arrays)
    finally:
      with hand.cv:
        hand.stop = True
        hand.cv.notify_all()
      if thread is not threading.current_thread():
        thread.join()
