r"""Predictions from a trained run: evaluate a checkpoint on a split, write prediction files.

  python -m autorec_jax.serving.predict --workdir=runs/ml1m --split=test --output=preds.txt
  python -m autorec_jax.serving.predict --workdir=runs/netflix_full --checkpoint=latest \
      --split=valid --output=valid_preds.txt

Prints RMSE and MAE of the chosen checkpoint on the chosen part of the run's own split
(rebuilt from its config.json, so it is the split the run was trained on) and, with
--output, writes DeepRecommender-style lines `user item prediction truth` with the
dataset's original ids. Predictions follow the same rules as training's evaluation:
the model for warm pairs, the documented mean fallback for cold ones, clipped to the
rating scale.
"""

from __future__ import annotations

import os
import sys

import jax
import jax.numpy as jnp
import numpy as np
from absl import app, flags

from autorec_jax.artifacts import checkpoint, snapshot
from autorec_jax.artifacts.factors import BEST_FILE, load_factors
from autorec_jax.artifacts.run_config import load_config
from autorec_jax.data.errors import DataError
from autorec_jax.data.types import Ratings
from autorec_jax.evaluation import buckets
from autorec_jax.evaluation import rmse as evaluate
from autorec_jax.evaluation.pairs import PairPredictor
from autorec_jax.models import registry as model_registry
from autorec_jax.models.registry import FACTORIZATION_KINDS
from autorec_jax.runtime import cli, console



def model_dir(workdir: str, cfg) -> str:
  """Where a run keeps the model it serves: a stacked run's is its fine-tuning stage."""
  return os.path.join(workdir, "stage3_finetune") if cfg.stacked.enabled else workdir


def resolve_step(directory: str, which, *, keep_best: bool) -> int:
  """The checkpoint step `which` names: "best", "latest", or a step number (an int or
  a string of digits). FileNotFoundError naming what exists when there is none."""
  all_steps, best = checkpoint.steps(directory, keep_best=keep_best)
  if isinstance(which, str) and which == "best":
    step = best
  elif isinstance(which, str) and which == "latest":
    step = all_steps[-1] if all_steps else None
  elif isinstance(which, (int, np.integer)) and not isinstance(which, bool):
    step = int(which)
  elif isinstance(which, str) and which.isdigit():
    step = int(which)
  else:
    raise ValueError(f"checkpoint must be 'best', 'latest' or a step number, got {which!r}")
  if step is None or step not in all_steps:
    raise FileNotFoundError(f"no checkpoint {which!r} in {directory}/checkpoints "
                            f"(have steps {all_steps})")
  return step


class Predictor:
  """A trained autoencoder with its run's data, predicting any (user, item) pair.

  Reads only the workdir: the config, the data snapshot (id maps, split, scale,
  preprocessing statistics: autorec_jax.artifacts.snapshot) and one checkpoint's
  parameters, so it works after the data files have been moved or changed.

  Attributes:
    cfg: the run's config. data: its ratings and split (RunData). titles: {item id:
    title} or None. model: the flax module. params: the checkpoint's parameters.
    step, epoch: the checkpoint used.
  """

  def __init__(self, workdir: str, which="best", *, batch_size: int = 1024):
    self.cfg = load_config(workdir)
    directory = model_dir(workdir, self.cfg)
    snap = snapshot.load(directory)
    self.data, self._pre, self.titles = snap.data, snap.pre, snap.titles
    self.orientation = self.cfg.model.orientation
    self._train_csr = self._pre.transform(self.data.train).to_csr(self.orientation)
    num_cols = self._train_csr.shape[1]
    self.model = model_registry.make_model(self.cfg.model, num_cols)
    params_like = jax.eval_shape(
        lambda: self.model.init(jax.random.key(0), jnp.zeros((1, num_cols), jnp.float32),
                                train=False))["params"]
    self.step = resolve_step(directory, which, keep_best=self.data.valid.num_ratings > 0)
    self.params, meta = checkpoint.restore_params(directory, self.step, params_like)
    self.epoch = int(meta["epoch"])
    self._batch_size = batch_size
    self._stats = evaluate.TrainStats.from_ratings(self.data.train)
    scale = self.data.loaded.rating_scale
    self._clip = scale if self.cfg.eval.clip_predictions else None
    self._forward = jax.jit(lambda p, x: self.model.apply({"params": p}, x, train=False))
    rows_t, cols_t = self._rows_cols(self.data.train.user, self.data.train.item)
    self._row_seen = np.bincount(rows_t, minlength=self._train_csr.shape[0]) > 0
    self._col_seen = np.bincount(cols_t, minlength=self._train_csr.shape[1]) > 0

  @property
  def train_stats(self) -> evaluate.TrainStats:
    """Train means: the fallback of pairs the model cannot predict."""
    return self._stats

  @property
  def preprocessor(self):
    """The run's Preprocessor (scaling and row biases fitted on train)."""
    return self._pre

  @property
  def train_rows(self):
    """The train part in model units, a CSR matrix with a row per model input."""
    return self._train_csr

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


class FactorizationPredictor:
  """A fitted baseline with its run's data, as `Predictor` for autoencoders.

  Attributes:
    cfg: the run's config. data: its loaded data and split. epoch: the epoch of the
    best-by-validation factors (the only ones a baseline run keeps).
  """

  def __init__(self, workdir: str):
    path = os.path.join(workdir, BEST_FILE)
    if not os.path.exists(path):
      raise FileNotFoundError(f"{path} not found: {workdir} holds no fitted baseline")
    self.cfg = cfg = load_config(workdir)
    snap = snapshot.load(workdir)
    self.data, self.titles = snap.data, snap.titles
    self._factors, offsets, meta = load_factors(path)
    self.epoch = int(meta["epoch"])
    self._pairs = PairPredictor(self.data.train, offsets, self.data.loaded.rating_scale,
                                clip=cfg.eval.clip_predictions)
    self._stats = self._pairs.stats
    self._clip = self.data.loaded.rating_scale if cfg.eval.clip_predictions else None

  def predict(self, user: np.ndarray, item: np.ndarray) -> np.ndarray:
    """float32 predicted ratings for index pairs (indices of this run's `Ratings`)."""
    return self._pairs(self._factors, user, item).astype(np.float32)

  def part(self, name: str) -> Ratings:
    """The run's `train`, `valid` or `test` ratings."""
    if name not in ("train", "valid", "test"):
      raise ValueError(f"split must be train, valid or test, got {name!r}")
    return getattr(self.data, name)

  predict_ids = Predictor.predict_ids


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


def load_predictor(workdir: str, which="best"):
  """The Predictor (autoencoder runs) or FactorizationPredictor (baselines) of a run."""
  cfg = load_config(workdir)
  if cfg.model.get("kind", "autoencoder") in FACTORIZATION_KINDS:
    return FactorizationPredictor(workdir)
  return Predictor(workdir, which)


FLAGS = flags.FlagValues()
_WORKDIR = flags.DEFINE_string("workdir", None, "A trained run's workdir.", flag_values=FLAGS)
_CHECKPOINT = flags.DEFINE_string("checkpoint", "best",
                                  "best, latest, or a checkpoint's step number.",
                                  flag_values=FLAGS)
_SPLIT = flags.DEFINE_enum("split", "test", ["train", "valid", "test"],
                           "Which part of the run's split to predict.", flag_values=FLAGS)
_OUTPUT = flags.DEFINE_string(
    "output", None, "Write `user item prediction truth` lines here (or, with "
    "--qualifying, the Netflix prediction file).", flag_values=FLAGS)
_BY = flags.DEFINE_enum("by", "user", ["user", "item"],
                        "Group the error by how many train ratings each user (or item) has.",
                        flag_values=FLAGS)
_QUALIFYING = flags.DEFINE_string(
    "qualifying", None, "A Netflix qualifying.txt (or probe.txt): write a prediction file "
    "in the Netflix Prize format to --output instead (MovieID: lines kept, one predicted "
    "rating per line).", flag_values=FLAGS)


def main(argv):
  del argv
  console.quiet_library_logs()
  try:
    predictor = load_predictor(_WORKDIR.value, _CHECKPOINT.value)
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
  app.run(main, flags_parser=cli.parser(FLAGS, required=("workdir",)))
