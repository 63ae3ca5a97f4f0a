r"""Predictions from a trained run: evaluate a checkpoint on a split, write prediction files.

  python -m autorec_jax.serving.predict --workdir=runs/ml1m --split=test --output=preds.txt
  python -m autorec_jax.serving.predict --workdir=runs/netflix_full --checkpoint=latest \
      --split=valid --output=valid_preds.txt

Prints RMSE and MAE of the chosen checkpoint on the chosen part of the run's own split
(rebuilt from its config.json, so it is the split the run was trained on) and, with
--output, writes DeepRecommender-style lines `user item prediction truth` with the
dataset's original ids. Predictions follow the same rules as training's evaluation:
the model for warm pairs, the documented mean fallback for cold ones, clipped to the
rating scale. An existing --output is replaced only with --overwrite (the file is
written under a temporary name and renamed when complete).
"""

from __future__ import annotations

import os
import zipfile

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
from absl import app, flags

from autorec_jax.artifacts import checkpoint, snapshot
from autorec_jax.artifacts.factors import BEST_FILE, load_factors
from autorec_jax.artifacts.run_config import load_config
from autorec_jax.data.errors import DataError
from autorec_jax.data.types import Ratings
from autorec_jax.evaluation import buckets
from autorec_jax.evaluation import rmse as evaluate
from autorec_jax.evaluation.pairs import PairPredictor
from autorec_jax.models import global_kernel
from autorec_jax.models import registry as model_registry
from autorec_jax.models.registry import FACTORIZATION_KINDS
from autorec_jax.runtime import cli, console
from autorec_jax.serving import ids as ids_lib


def model_dir(workdir: str, cfg) -> str:
  """Where a run keeps the model it serves: a stacked run's is its fine-tuning stage."""
  return os.path.join(workdir, "stage3_finetune") if cfg.stacked.enabled else workdir


def parse_checkpoint(which, name: str = "checkpoint"):
  """`which` checked before anything is read: "best", "latest", or a step number (an
  int >= 0, numpy ints too, or a string of ASCII digits, returned as an int).
  ValueError naming `name` (the argument, or the command line's flag) otherwise: a
  bool, a float, a negative number, any other string."""
  if isinstance(which, str):
    if which in ("best", "latest"):
      return which
    if which.isascii() and which.isdigit():
      return int(which)
  elif isinstance(which, (int, np.integer)) and not isinstance(which, (bool, np.bool_)):
    if which >= 0:
      return int(which)
    raise ValueError(f"{name} must be 'best', 'latest' or a step number >= 0, got {which}")
  raise ValueError(f"{name} must be 'best', 'latest' or a step number (an int >= 0), got "
                   f"{which!r:.80}")


def resolve_step(directory: str, which, *, keep_best: bool) -> int:
  """The checkpoint step `which` names: "best", "latest", or a step number (see
  parse_checkpoint). FileNotFoundError naming the checkpoints folder and the steps it
  holds when there is no such checkpoint."""
  which = parse_checkpoint(which)
  root = os.path.join(directory, "checkpoints")
  all_steps, best = checkpoint.steps(directory, keep_best=keep_best)
  if not all_steps:
    why = "no such folder" if not os.path.lexists(root) else (
        "it is a file" if not os.path.isdir(root) else "it holds no checkpoint")
    raise FileNotFoundError(f"{root}: no checkpoint to serve ({why}); the run stopped before "
                            "saving one, or this is not a trained run's workdir")
  shown = ", ".join(map(str, all_steps[:ids_lib.SHOWN]))
  if len(all_steps) > ids_lib.SHOWN:
    shown += f" and {len(all_steps) - ids_lib.SHOWN} more"
  have = f"it holds step{'s' if len(all_steps) > 1 else ''} {shown}"
  if which == "best":
    if best is None:
      raise FileNotFoundError(f"no best checkpoint under {root}: none of its checkpoints has "
                              f"the validation metrics the best is chosen by ({have}); use "
                              "'latest' or a step number")
    return best
  if which == "latest":
    return all_steps[-1]
  if which not in all_steps:
    raise FileNotFoundError(f"no checkpoint {which} under {root}; {have}")
  return which


def _load_snapshot(directory: str) -> snapshot.Snapshot:
  """snapshot.load, with a damaged data.npz (a bad zip, a missing array) named."""
  try:
    return snapshot.load(directory)
  except DataError:
    raise
  except (zipfile.BadZipFile, KeyError, ValueError, OSError, EOFError, TypeError) as e:
    path = os.path.join(directory, snapshot.SNAPSHOT_FILE)
    cause = f"array {e} missing" if isinstance(e, KeyError) else cli.one_line(str(e))[:200]
    raise DataError(f"{path}: damaged ({cause}); restore it or train the run again") from e


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
    which = parse_checkpoint(which)
    self.cfg = load_config(workdir)
    kind = self.cfg.model.get("kind", "autoencoder")
    if kind in FACTORIZATION_KINDS:
      raise ValueError(f"{workdir} holds a fitted {kind} baseline, not an autoencoder; it is "
                       "served by `python -m autorec_jax.serving.predict` (load_predictor)")
    directory = model_dir(workdir, self.cfg)
    snap = _load_snapshot(directory)
    self.data, self._pre, self.titles = snap.data, snap.pre, snap.titles
    self.orientation = self.cfg.model.orientation
    self._train_csr = self._pre.transform(self.data.train).to_csr(self.orientation)
    num_cols = self._train_csr.shape[1]
    self.model = model_registry.make_model(self.cfg.model, num_cols,
                                           num_rows=self._train_csr.shape[0])
    params_like = jax.eval_shape(
        lambda: self.model.init(jax.random.key(0), jnp.zeros((1, num_cols), jnp.float32),
                                train=False))["params"]
    self.step = resolve_step(directory, which, keep_best=self.data.valid.num_ratings > 0)
    self.params, meta = checkpoint.restore_params(directory, self.step, params_like)
    self.epoch = int(meta["epoch"])
    # What the network reads: the train rows, or GLocal-K's convolution of them.
    self._train_csr = global_kernel.input_rows(
        self.model, self.params, self._train_csr,
        dot_scale=self.cfg.model.get("global_kernel", {}).get("dot_scale", 1.0))
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
    """Predicted ratings for index pairs (indices of this run's `Ratings`; ValueError
    for an index that is not an integer in range)."""
    user, item = check_pairs(self.data.loaded.ratings, user, item)
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
    u = _index_of(ratings.user_ids, user_ids, "user")
    i = _index_of(ratings.item_ids, item_ids, "item")
    if len(u) != len(i):
      raise ValueError(f"got {len(u)} user ids and {len(i)} item ids; pass one per pair")
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
    if not os.path.isfile(path):
      raise FileNotFoundError(f"{path} not found: {workdir} holds no fitted baseline")
    self.cfg = cfg = load_config(workdir)
    snap = _load_snapshot(workdir)
    self.data, self.titles = snap.data, snap.titles
    try:
      self._factors, offsets, meta = load_factors(path)
      self.epoch = int(meta["epoch"])
    except MemoryError:
      raise
    except Exception as e:  # pylint: disable=broad-except
      raise DataError(f"{path}: damaged ({cli.one_line(str(e))[:200] or type(e).__name__}); "
                      "train the run again") from e
    self._pairs = PairPredictor(self.data.train, offsets, self.data.loaded.rating_scale,
                                clip=cfg.eval.clip_predictions)
    self._stats = self._pairs.stats
    self._clip = self.data.loaded.rating_scale if cfg.eval.clip_predictions else None

  def predict(self, user: np.ndarray, item: np.ndarray) -> np.ndarray:
    """float32 predicted ratings for index pairs (indices of this run's `Ratings`)."""
    user, item = check_pairs(self.data.loaded.ratings, user, item)
    return self._pairs(self._factors, user, item).astype(np.float32)

  def part(self, name: str) -> Ratings:
    """The run's `train`, `valid` or `test` ratings."""
    if name not in ("train", "valid", "test"):
      raise ValueError(f"split must be train, valid or test, got {name!r}")
    return getattr(self.data, name)

  predict_ids = Predictor.predict_ids


def check_pairs(ratings: Ratings, user, item) -> tuple[np.ndarray, np.ndarray]:
  """(user, item) index arrays checked: integers in range, one user per item."""
  user = ids_lib.check_indices(user, len(ratings.user_ids), "user")
  item = ids_lib.check_indices(item, len(ratings.item_ids), "item")
  if len(user) != len(item):
    raise ValueError(f"got {len(user)} user and {len(item)} item indices; pass one per pair")
  return user, item


def _index_of(sorted_ids: np.ndarray, ids, what: str) -> np.ndarray:
  """Index of each id in the sorted id map, -1 where absent; ValueError for a value
  that is not an id of this data set (serving.ids)."""
  pos, given = ids_lib.positions(pd.Index(sorted_ids), ids, f"{what} ids")
  bad = ids_lib.values_at(given, pos == ids_lib.INVALID)
  if bad:
    raise ValueError(f"{what} id(s) {ids_lib.few(bad)} are not ids of this data set (its "
                     f"ids are {ids_lib.kind_of(pd.Index(sorted_ids))})")
  return pos


def metrics(pred: np.ndarray, truth: np.ndarray) -> dict[str, float]:
  err = pred.astype(np.float64) - truth
  return {"rmse": float(np.sqrt(np.mean(err * err))), "mae": float(np.mean(np.abs(err))),
          "count": int(len(err))}


def write_deeprec_lines(path: str, part: Ratings, pred: np.ndarray) -> None:
  """`user item prediction truth` per line, original ids, written atomically."""
  with cli.atomic_output(path, encoding="utf-8") as f:
    for u, i, p, t in zip(part.user_ids[part.user], part.item_ids[part.item], pred,
                          part.rating):
      f.write(f"{u} {i} {p:.4f} {t:g}\n")


def load_predictor(workdir: str, which="best"):
  """The Predictor (autoencoder runs) or FactorizationPredictor (baselines) of a run."""
  which = parse_checkpoint(which)
  cfg = load_config(workdir)
  kind = cfg.model.get("kind", "autoencoder")
  if kind in FACTORIZATION_KINDS:
    if which != "best":
      raise ValueError(f"{workdir} holds a fitted {kind} baseline, which keeps only its best "
                       f"factors: the checkpoint must be 'best', got {which!r}")
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
_OVERWRITE = flags.DEFINE_bool("overwrite", False, "Replace an existing --output file.",
                               flag_values=FLAGS)
_BY = flags.DEFINE_enum("by", "user", ["user", "item"],
                        "Group the error by how many train ratings each user (or item) has.",
                        flag_values=FLAGS)
_QUALIFYING = flags.DEFINE_string(
    "qualifying", None, "A Netflix qualifying.txt (or probe.txt): write a prediction file "
    "in the Netflix Prize format to --output instead (MovieID: lines kept, one predicted "
    "rating per line).", flag_values=FLAGS)


@cli.one_line_errors
def main(argv):
  del argv
  console.quiet_library_logs()
  cli.quiet_checkpoint_logs()
  which = parse_checkpoint(_CHECKPOINT.value, "--checkpoint")
  if _QUALIFYING.value is not None and _OUTPUT.value is None:
    raise ValueError("--qualifying needs --output (the prediction file to write)")
  if _OUTPUT.value is not None:
    cli.check_output_file(_OUTPUT.value, overwrite=_OVERWRITE.value)
  predictor = load_predictor(_WORKDIR.value, which)
  if _QUALIFYING.value is not None:
    return _write_qualifying(predictor)
  part = predictor.part(_SPLIT.value)
  if part.num_ratings == 0:
    raise ValueError(f"--split={_SPLIT.value}: the run's {_SPLIT.value} part holds no "
                     "ratings; choose another --split")
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
  if _OUTPUT.value is not None:
    write_deeprec_lines(_OUTPUT.value, part, pred)
    print(f"wrote {len(pred)} predictions to {_OUTPUT.value}")
  return 0


def _write_qualifying(predictor: Predictor) -> int:
  from autorec_jax.data import netflix  # pylint: disable=import-outside-toplevel
  queries = netflix.read_qualifying(_QUALIFYING.value)
  pred = predictor.predict_ids(queries.customer, queries.movie)
  netflix.write_predictions(_OUTPUT.value, queries, pred)
  print(f"wrote {len(pred)} predictions to {_OUTPUT.value}")
  return 0


if __name__ == "__main__":
  app.run(main, flags_parser=cli.parser(FLAGS, required=("workdir",)))
