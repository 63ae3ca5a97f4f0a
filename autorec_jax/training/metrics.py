"""A CLU-shaped metric writer (absl logging + JSONL + TensorBoard), the run's
results.json and last console line, and a NaN guard.

Only process 0 writes files; other processes just log, as CLU's `just_logging`.
metrics.jsonl and results.json are strict JSON: a metric that does not exist (the RMSE
of an empty validation or test part, a ranking metric without a relevant rating) is
`null`, never a bare `NaN`.

Observers (`observing(fn)`) see every row any writer writes, as it is written: the one
seam through which a caller follows a run of any trainer (every trainer logs its
epochs through a MetricWriter), e.g. the tuner reporting validation RMSE to Optuna and
stopping a trial that will not pay off by raising from the observer.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
from typing import Any, Callable, Iterator

Observer = Callable[[dict[str, Any]], None]
_observers: list[Observer] = []


@contextlib.contextmanager
def observing(observer: Observer) -> Iterator[None]:
  """Calls `observer(row)` with each row (`{"step": s, **scalars}`, as in
  metrics.jsonl) that any MetricWriter writes inside the block, in every process.

  An exception the observer raises stops the run: the writer flushes and closes its
  files first, then the exception unwinds the trainer as any error would (its
  workdir's lock is released), so the run's files stay complete up to that row.
  """
  _observers.append(observer)
  try:
    yield
  finally:
    _observers.remove(observer)

import jax
from absl import logging


class MetricWriter:
  """`write_scalars(step, dict)`, `write_hparams(dict)`, `flush()`, `close()`.

  JSONL rows are `{"step": s, **scalars}`; the train loop adds `epoch`. TensorBoard
  event files go to `workdir/tensorboard` (tensorboardX: a small, well-kept writer of
  the event format, so no TensorFlow is needed).
  """

  def __init__(self, workdir: str, *, jsonl_name: str = "metrics.jsonl",
               tensorboard: bool = True):
    self._write = jax.process_index() == 0
    self._jsonl = None
    self._tb = None
    if self._write:
      os.makedirs(workdir, exist_ok=True)
      self._jsonl = open(os.path.join(workdir, jsonl_name), "a", encoding="utf-8")
      if tensorboard:
        from tensorboardX import SummaryWriter  # pylint: disable=import-outside-toplevel
        self._tb = SummaryWriter(os.path.join(workdir, "tensorboard"))

  def write_scalars(self, step: int, scalars: dict[str, Any]) -> None:
    """Appends one JSONL row (non-finite values as null) and the finite scalars to
    TensorBoard."""
    clean = {k: _scalar(v) for k, v in scalars.items()}
    logging.debug("step %d: %s", step, ", ".join(f"{k}={_fmt(v)}" for k, v in clean.items()))
    if self._write:
      self._jsonl.write(json.dumps({"step": int(step), **clean}, allow_nan=False) + "\n")
      if self._tb is not None:
        for k, v in clean.items():
          if isinstance(v, (int, float)) and k not in ("step", "epoch"):
            self._tb.add_scalar(k.replace("@", "_at_"), v, global_step=step)
    if _observers:
      self.flush()
      try:
        for observer in list(_observers):
          observer({"step": int(step), **clean})
      except BaseException:
        self.close()
        raise

  def write_hparams(self, hparams: dict[str, Any]) -> None:
    logging.debug("hparams: %s", hparams)
    if self._tb is not None:
      flat = {k: (v if isinstance(v, (int, float, str, bool)) else str(v))
              for k, v in hparams.items()}
      self._tb.add_text("hparams", json.dumps(flat, indent=1), 0)

  def flush(self) -> None:
    if self._jsonl is not None:
      self._jsonl.flush()
    if self._tb is not None:
      self._tb.flush()

  def close(self) -> None:
    """Flushes and closes the files; closing again does nothing."""
    self.flush()
    if self._jsonl is not None:
      self._jsonl.close()
      self._jsonl = None
    if self._tb is not None:
      self._tb.close()
      self._tb = None


def _fmt(v: Any) -> str:
  return f"{v:.5g}" if isinstance(v, float) else str(v)


def _scalar(v: Any) -> Any:
  """A metric value for JSON: ints, strings and None as they are, other numbers as
  float, NaN and infinities as None (JSON has no NaN)."""
  if v is None or isinstance(v, (int, str)):
    return v
  v = float(v)
  return v if math.isfinite(v) else None


def strict(tree: Any) -> Any:
  """`tree` (dicts, lists, numbers) with every NaN or infinite float replaced by None,
  so `json.dump(..., allow_nan=False)` can write it."""
  if isinstance(tree, dict):
    return {k: strict(v) for k, v in tree.items()}
  if isinstance(tree, (list, tuple)):
    return [strict(v) for v in tree]
  if isinstance(tree, float) and not math.isfinite(tree):
    return None
  return tree


def finish_results(results: dict, workdir: str | None) -> dict:
  """The run's final results as written: non-finite metrics as None; written to
  `workdir/results.json` (atomically, strict JSON) unless workdir is None.

  Raises FloatingPointError when the test part has ratings but its RMSE is not a
  finite number (the model predicts NaN or inf): that is a failed run, not a
  missing metric.
  """
  rmse, count = results.get("test/rmse"), results.get("test/count") or 0
  if count and (rmse is None or not math.isfinite(rmse)):
    raise FloatingPointError(f"test/rmse became {rmse} on the {count} test ratings: the "
                             "best checkpoint predicts NaN or inf (try a lower "
                             "optim.learning_rate or optim.grad_clip_norm)")
  results = strict(results)
  if workdir is not None:
    tmp = os.path.join(workdir, "results.json.tmp")
    with open(tmp, "w", encoding="utf-8") as f:
      json.dump(results, f, indent=2, sort_keys=True, allow_nan=False)
    os.replace(tmp, os.path.join(workdir, "results.json"))
  return results


def summary_line(results: dict) -> str:
  """The run's last stdout line: the best model's test RMSE and MAE, the best epoch,
  its validation RMSE and the median epoch time; "n/a" for a metric of an empty part
  (data.test_fraction=0, data.valid_fraction=0, or too few ratings to hold any); and
  how many test ratings are cold when at least COLD_SHARE_SAID of them are."""
  if results.get("test/rmse") is None:
    test = "test RMSE n/a (empty test part)"
  else:
    test = f"test RMSE {results['test/rmse']:.4f}  MAE {results['test/mae']:.4f}"
  valid = results.get("valid/rmse")
  valid = "valid RMSE n/a" if valid is None else f"valid RMSE {valid:.4f}"
  cold, count = results.get("test/cold_count") or 0, results.get("test/count") or 0
  if count and cold >= COLD_SHARE_SAID * count:
    test += (f"  ({cold} of {count} test ratings cold: their user or item has no train "
             "rating, so they get the train means)")
  return (f"{test}  (best epoch {results['best_epoch']}, {valid}, "
          f"{results['seconds_per_epoch']:.2f} s/epoch)")


# The share of cold test ratings (user or item without train ratings, predicted by the
# train means) from which the summary line says how many there are.
COLD_SHARE_SAID = 0.01


def truncate_jsonl(path: str, last_epoch: int) -> None:
  """Drops rows written after `last_epoch` (a killed run's evals past its checkpoint),
  and rows that are no JSON object (a line cut off by the kill; they are logged)."""
  if not os.path.exists(path):
    return
  with open(path, encoding="utf-8", errors="replace") as f:
    rows = [line for line in f if line.strip()]
  keep = []
  for number, row in enumerate(rows, start=1):
    try:
      parsed = json.loads(row)
      epoch = parsed.get("epoch", 0)
      if isinstance(epoch, bool) or not isinstance(epoch, (int, float)):
        raise ValueError(f"epoch {epoch!r}")
    except (ValueError, AttributeError) as e:
      logging.warning("%s: row %d dropped, not a metrics row (%s): %.80r", path, number, e,
                      row)
      continue
    if epoch <= last_epoch:
      keep.append(row if row.endswith("\n") else row + "\n")
  tmp = path + ".tmp"
  with open(tmp, "w", encoding="utf-8") as f:
    f.writelines(keep)
  os.replace(tmp, path)


_compile = {"seconds": 0.0, "listening": False}
_COMPILE_EVENTS = ("/jax/core/compile/jaxpr_trace_duration",
                   "/jax/core/compile/jaxpr_to_mlir_module_duration",
                   "/jax/core/compile/backend_compile_duration")


def compile_seconds() -> float:
  """Seconds this process has spent tracing, lowering and compiling XLA programs since
  the first call (JAX's monitoring events), for `perf` records: on a small data set
  compiling is a large share of a run."""
  if not _compile["listening"]:
    _compile["listening"] = True

    def listen(event: str, duration: float, **_):
      if event in _COMPILE_EVENTS:
        _compile["seconds"] += duration

    jax.monitoring.register_event_duration_secs_listener(listen)
  return _compile["seconds"]


def check_finite(value: float, *, what: str, epoch: int, step: int) -> None:
  """Raises FloatingPointError if a fetched loss is NaN or infinite."""
  if not math.isfinite(value):
    raise FloatingPointError(
        f"{what} became {value} at epoch {epoch} (step {step}); the learning rate is "
        "likely too high for this model (try a lower optim.learning_rate or "
        "optim.grad_clip_norm)")
