r"""Predictions from a trained run: evaluate a checkpoint on a split, write prediction files.

  python -m autorec_jax.predict --workdir=runs/ml1m --split=test --output=preds.txt
  python -m autorec_jax.predict --workdir=runs/netflix_full --checkpoint=latest \
      --split=valid --output=valid_preds.txt

Prints RMSE and MAE of the chosen checkpoint on the chosen part of the run's own split
(rebuilt from its config.json, so it is the split the run was trained on) and, with
--output, writes DeepRecommender-style lines `user item prediction truth` with the
dataset's original ids. Predictions follow the same rules as training's evaluation:
the model for warm pairs, the documented mean fallback for cold ones, clipped to the
rating scale.
"""

from __future__ import annotations

import json
import os
import sys

import jax
import jax.numpy as jnp
import numpy as np
from absl import app, flags
from ml_collections import config_dict

from autorec_jax import baselines, buckets, checkpoint, evaluate, optim, preprocess, train
from autorec_jax import metrics as metrics_lib
from autorec_jax.config_schema import base_config
from autorec_jax.data.errors import DataError
from autorec_jax.data.types import Ratings


def _tuples(value):
  if isinstance(value, dict):
    return {k: _tuples(v) for k, v in value.items()}
  if isinstance(value, list):
    return tuple(_tuples(v) for v in value)
  return value


def load_config(workdir: str) -> config_dict.ConfigDict:
  """The resolved config a run saved in `workdir/config.json`."""
  path = os.path.join(workdir, "config.json")
  if not os.path.exists(path):
    raise FileNotFoundError(f"{path} not found: {workdir} is not a run's workdir")
  with open(path, encoding="utf-8") as f:
    saved = _tuples(json.load(f))
  # Fields added to the schema after the run was saved take their defaults.
  return config_dict.ConfigDict(_merge(base_config().to_dict(), saved))


def _merge(defaults: dict, saved: dict) -> dict:
  out = dict(defaults)
  for k, v in saved.items():
    out[k] = _merge(defaults[k], v) if isinstance(v, dict) and isinstance(
        defaults.get(k), dict) else v
  return out


class Predictor:
  """A trained model with its run's data, predicting any (user, item) pair.

  Attributes:
    cfg: the run's config. data: its loaded data and split. epoch: the checkpoint used.
  """

  def __init__(self, workdir: str, which: str = "best", *, batch_size: int = 1024):
    self.cfg = load_config(workdir)
    self.data = train.load_data(self.cfg)
    self.orientation = self.cfg.model.orientation
    self._pre = preprocess.Preprocessor.fit(
        self.data.train, orientation=self.orientation, scale=self.cfg.preprocess.scale,
        rating_scale=self.data.loaded.rating_scale, bias=self.cfg.preprocess.bias)
    self._train_csr = self._pre.transform(self.data.train).to_csr(self.orientation)
    self.model = train.make_model(self.cfg.model, self._train_csr.shape[1])
    tx, _ = optim.from_config(self.cfg.optim, steps_per_epoch=1)
    like = train.init_state(self.model, tx, self._train_csr.shape[1], jax.random.key(0))
    if self.cfg.stacked.enabled:  # a stacked run's model is its fine-tuning stage's
      workdir = os.path.join(workdir, "stage3_finetune")
    manager = checkpoint.make_manager(workdir, keep_best=self.data.valid.num_ratings > 0)
    step = {"best": checkpoint.best_step(manager),
            "latest": checkpoint.latest_step(manager)}.get(which)
    if step is None and which not in ("best", "latest") and which.isdigit():
      step = int(which)
    if step is None or step not in manager.all_steps():
      raise FileNotFoundError(f"no checkpoint {which!r} in {workdir}/checkpoints "
                              f"(have steps {manager.all_steps()})")
    self.step = step
    state, meta = checkpoint.restore(manager, step, like)
    self.epoch = int(meta["epoch"])
    self.params = state.params
    self._batch_size = batch_size
    self._stats = evaluate.TrainStats.from_ratings(self.data.train)
    scale = self.data.loaded.rating_scale
    self._clip = scale if self.cfg.eval.clip_predictions else None
    self._forward = jax.jit(lambda p, x: self.model.apply({"params": p}, x, train=False))
    rows_t, cols_t = self._rows_cols(self.data.train.user, self.data.train.item)
    self._row_seen = np.bincount(rows_t, minlength=self._train_csr.shape[0]) > 0
    self._col_seen = np.bincount(cols_t, minlength=self._train_csr.shape[1]) > 0

  def _rows_cols(self, user, item):
    return (user, item) if self.orientation == "user" else (item, user)

  def predict(self, user: np.ndarray, item: np.ndarray) -> np.ndarray:
    """Predicted ratings for index pairs (indices of this run's `Ratings`)."""
    user, item = np.asarray(user, np.int64), np.asarray(item, np.int64)
    rows, cols = self._rows_cols(user, item)
    warm = self._row_seen[rows] & self._col_seen[cols]
    pred = self._stats.fallback(user, item).astype(np.float32)
    warm_rows = np.unique(rows[warm])
    for start in range(0, len(warm_rows), self._batch_size):
      chunk = warm_rows[start:start + self._batch_size]
      x = np.zeros((self._batch_size, self._train_csr.shape[1]), np.float32)
      x[:len(chunk)] = self._train_csr[chunk].toarray()
      out = np.asarray(self._forward(self.params, jnp.asarray(x)))[:len(chunk)]
      out = self._pre.inverse(out, self._pre.row_bias[chunk])
      sel = warm & np.isin(rows, chunk)
      pred[sel] = out[np.searchsorted(chunk, rows[sel]), cols[sel]]
    if self._clip is not None:
      pred = np.clip(pred, *self._clip)
    return pred

  def predict_ids(self, user_ids: np.ndarray, item_ids: np.ndarray) -> np.ndarray:
    """Predictions for original ids; an id the run never saw gets the fallback of the
    side that is known (a user never seen gets the item mean, and so on)."""
    ratings = self.data.loaded.ratings
    u = _index_of(ratings.user_ids, user_ids)
    i = _index_of(ratings.item_ids, item_ids)
    pred = np.full(len(u), self._stats.global_mean, np.float32)
    both = (u >= 0) & (i >= 0)
    pred[both] = self.predict(u[both], i[both])
    only_item = (u < 0) & (i >= 0)
    item_mean = self._stats.item_mean[i[only_item]]
    pred[only_item] = np.where(np.isnan(item_mean), self._stats.global_mean, item_mean)
    only_user = (u >= 0) & (i < 0)
    user_mean = self._stats.user_mean[u[only_user]]
    pred[only_user] = np.where(np.isnan(user_mean), self._stats.global_mean, user_mean)
    if self._clip is not None:
      pred = np.clip(pred, *self._clip)
    return pred

  def part(self, name: str) -> Ratings:
    """The run's `train`, `valid` or `test` ratings."""
    if name not in ("train", "valid", "test"):
      raise ValueError(f"split must be train, valid or test, got {name!r}")
    return getattr(self.data, name)


def _index_of(sorted_ids: np.ndarray, ids: np.ndarray) -> np.ndarray:
  """Index of each id in the sorted id map, -1 where absent."""
  ids = np.asarray(ids).astype(sorted_ids.dtype, copy=False)
  if len(sorted_ids) == 0:
    return np.full(len(ids), -1, np.int64)
  pos = np.minimum(np.searchsorted(sorted_ids, ids), len(sorted_ids) - 1)
  return np.where(sorted_ids[pos] == ids, pos, -1).astype(np.int64)


def metrics(pred: np.ndarray, truth: np.ndarray) -> dict[str, float]:
  err = pred.astype(np.float64) - truth
  return {"rmse": float(np.sqrt(np.mean(err * err))), "mae": float(np.mean(np.abs(err))),
          "count": int(len(err))}


def write_deeprec_lines(path: str, part: Ratings, pred: np.ndarray) -> None:
  """`user item prediction truth` per line, original ids, written atomically."""
  tmp = path + ".tmp"
  with open(tmp, "w", encoding="utf-8") as f:
    for u, i, p, t in zip(part.user_ids[part.user], part.item_ids[part.item], pred,
                          part.rating):
      f.write(f"{u} {i} {p:.4f} {t:g}\n")
  os.replace(tmp, path)


_WORKDIR = flags.DEFINE_string("workdir", None, "A trained run's workdir.")
_CHECKPOINT = flags.DEFINE_string("checkpoint", "best",
                                  "best, latest, or a checkpoint's step number.")
_SPLIT = flags.DEFINE_enum("split", "test", ["train", "valid", "test"],
                           "Which part of the run's split to predict.")
_OUTPUT = flags.DEFINE_string(
    "output", None, "Write `user item prediction truth` lines here (or, with "
    "--qualifying, the Netflix prediction file).")
_BY = flags.DEFINE_enum("by", "user", ["user", "item"],
                        "Group the error by how many train ratings each user (or item) has.")
_QUALIFYING = flags.DEFINE_string(
    "qualifying", None, "A Netflix qualifying.txt (or probe.txt): write a prediction file "
    "in the Netflix Prize format to --output instead (MovieID: lines kept, one predicted "
    "rating per line).")


def main(argv):
  del argv
  metrics_lib.quiet_library_logs()
  try:
    cfg = load_config(_WORKDIR.value)
    if cfg.model.get("kind", "autoencoder") in baselines.KINDS:
      predictor = baselines.FactorizationPredictor(cfg, _WORKDIR.value)
    else:
      predictor = Predictor(_WORKDIR.value, _CHECKPOINT.value)
  except (DataError, FileNotFoundError, ValueError) as e:
    print(f"error: {e}", file=sys.stderr)
    return 1
  if _QUALIFYING.value:
    return _write_qualifying(predictor)
  part = predictor.part(_SPLIT.value)
  pred = predictor.predict(part.user, part.item)
  m = metrics(pred, part.rating)
  where = (f"checkpoint of step {predictor.step}, epoch {predictor.epoch}"
           if hasattr(predictor, "step") else "best factors")
  print(f"{_SPLIT.value} RMSE {m['rmse']:.4f}  MAE {m['mae']:.4f}  ({m['count']} ratings, "
        f"{where})")
  print(f"by {_BY.value} activity (train ratings per {_BY.value}):")
  for row in buckets.rmse_by_activity(predictor.data.train, part, pred, by=_BY.value):
    print(f"  {row['bucket']:>8}  {row['count']:>8} ratings  RMSE {row['rmse']:.4f}  "
          f"MAE {row['mae']:.4f}")
  if _OUTPUT.value:
    write_deeprec_lines(_OUTPUT.value, part, pred)
  return 0


def _write_qualifying(predictor: Predictor) -> int:
  from autorec_jax.data import netflix  # pylint: disable=import-outside-toplevel
  if not _OUTPUT.value:
    print("error: --qualifying needs --output", file=sys.stderr)
    return 1
  try:
    queries = netflix.read_qualifying(_QUALIFYING.value)
  except DataError as e:
    print(f"error: {e}", file=sys.stderr)
    return 1
  pred = predictor.predict_ids(queries.customer, queries.movie)
  netflix.write_predictions(_OUTPUT.value, queries, pred)
  print(f"wrote {len(pred)} predictions to {_OUTPUT.value}")
  return 0


if __name__ == "__main__":
  flags.mark_flags_as_required(["workdir"])
  app.run(main)
