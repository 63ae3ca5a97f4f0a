"""Using a trained run from Python: predictions by original id, top-K, new users.

  import autorec_jax
  model = autorec_jax.load("runs/movielens_1m")         # the best checkpoint
  model.predict([1, 1], [1193, 661])                    # ratings, dataset ids
  model.recommend(1, k=10)                              # [Recommendation(item_id, ...)]
  new = model.fold_in({1193: 5, 661: 3, 914: 4})        # a user unseen in training
  new.recommend(10); new.predict([2355])
  model.export()                                        # workdir/export/, see export.py

Every prediction follows the rule of training's evaluation (evaluate.py): the model
for a warm pair, the mean fallback for a cold one, clipped to the rating scale.
Rankings use the unclipped scores (clipping would tie every item above the scale's
top) over the items the model was trained to output (items with train ratings),
excluding the items the user has rated.

New users (`fold_in`, see fold_in.py): a user-based model encodes the new rating
vector as it encodes a known user's train row (same scaling and bias removal, from
the given ratings) and, by default, refines that code to fit the given ratings
through the decoder; an item-based model has no input or output unit for the new
user, so the user's output unit is fitted on the frozen item codes.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Iterable, Mapping, Sequence

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
import scipy.sparse as sp

from autorec_jax.data import titles as titles_lib
from autorec_jax.evaluation import rmse as evaluate
from autorec_jax.evaluation import topk
from autorec_jax.serving import fold_in as fold_in_lib
from autorec_jax.serving import ids as ids_lib
from autorec_jax.serving import portable, predict

EXCLUDE = ("all", "train")
# Fold-in methods by orientation, the default first (see Model.fold_in).
FOLD_IN_METHODS = {"user": ("refine", "encode"), "item": ("readout",)}


@dataclasses.dataclass(frozen=True)
class Recommendation:
  """One recommended item: its dataset id, predicted rating, ranking score, title."""

  item_id: Any
  prediction: float  # clipped to the rating scale, as `predict` returns it
  score: float  # the unclipped score the list is ranked by
  title: str | None


def make_rows_fn(module, *, mid: float, half: float, row_bias: bool,
                 trained_N: np.ndarray, fallback_N: np.ndarray,
                 clip: tuple[float, float] | None) -> Callable:
  """(params, ratings_BxN, mask_BxN) -> predicted ratings [B, N] for whole rows.

  A row is what the model reads (a user's ratings of every item for a U-encoder, an
  item's ratings by every training user for a V-encoder), on the rating scale with
  an explicit observed mask. Preprocessing happens inside, from the row itself: the
  affine scaling, and the row's mean removed when the run removes row biases; so a
  training row gives exactly the live model's predictions, and a new user's row
  (U-encoder) is folded in. Entries in columns without train ratings are ignored
  (their input weights never trained). Cold outputs get evaluate.py's fallback: a
  column without train ratings gets the row's mean; a row with no usable rating gets
  `fallback_N` (the column's train mean, or the global mean).
  """
  trained_1xN = np.asarray(trained_N, bool)[None, :]
  fallback_1xN = np.asarray(fallback_N, np.float32)[None, :]

  def rows_fn(params, ratings_BxN, mask_BxN):
    m_BxN = jnp.where(trained_1xN, mask_BxN, 0.0)
    n_B = m_BxN.sum(1)
    has_B = n_B > 0
    denom_B = jnp.maximum(n_B, 1.0)
    scaled_BxN = (ratings_BxN - mid) / half
    if row_bias:
      bias_B = jnp.where(has_B, (scaled_BxN * m_BxN).sum(1) / denom_B, 0.0)
    else:
      bias_B = jnp.zeros_like(n_B)
    x_BxN = jnp.where(m_BxN > 0, scaled_BxN - bias_B[:, None], 0.0)
    out_BxN = module.apply({"params": params}, x_BxN, train=False)
    pred_BxN = (out_BxN + bias_B[:, None]) * half + mid
    mean_B = (jnp.where(m_BxN > 0, ratings_BxN, 0.0)).sum(1) / denom_B
    pred_BxN = jnp.where(trained_1xN, pred_BxN, mean_B[:, None])
    pred_BxN = jnp.where(has_B[:, None], pred_BxN, fallback_1xN)
    if clip is not None:
      pred_BxN = jnp.clip(pred_BxN, clip[0], clip[1])
    return pred_BxN

  return rows_fn


def _dense(csr: sp.csr_matrix, rows: np.ndarray, batch: int) -> tuple[np.ndarray, np.ndarray]:
  """Rows of a CSR matrix as (values, observed mask), padded to `batch` rows."""
  values = np.zeros((batch, csr.shape[1]), np.float32)
  mask = np.zeros((batch, csr.shape[1]), np.float32)
  sub = csr[rows]
  r = np.repeat(np.arange(len(rows)), np.diff(sub.indptr))
  values[r, sub.indices] = sub.data
  mask[r, sub.indices] = 1.0  # from the structure: a stored 0 is a rating
  return values, mask


@dataclasses.dataclass
class FoldIn:
  """A new user's predictions for every item of the model.

  Attributes:
    item_ids: the model's items (dataset ids), the index of the arrays below.
    scores: float32[I] ranking scores (unclipped; fallback where the model has none).
    predictions: float32[I] predicted ratings, clipped as `Model.predict`'s.
    rated: bool[I] the items the user gave.
  """

  item_ids: np.ndarray
  scores: np.ndarray
  predictions: np.ndarray
  rated: np.ndarray
  _model: "Model"

  def predict(self, item_ids: Iterable[Any]) -> np.ndarray:
    """Predicted ratings of these items (dataset ids)."""
    return self.predictions[self._model.item_index(item_ids)]

  def recommend(self, k: int = 10) -> list[Recommendation]:
    """The k best items the user did not rate (k a positive int)."""
    k = topk.check_k(k)
    allowed = self._model.trained_items & ~self.rated
    return self._model.ranked(self.scores, allowed, k)


class Model:
  """A trained run, addressed by the dataset's original user and item ids.

  Attributes:
    predictor: the underlying `predict.Predictor` (config, data, split, params).
    workdir: the run's directory (where `export` writes by default).
    orientation: "user" or "item". rating_scale: (min, max).
    user_ids, item_ids: original ids by index. trained_items: bool[I], items with
      train ratings (the only ones ever recommended).
  """

  def __init__(self, predictor: predict.Predictor, *, workdir: str | None = None,
               batch_size: int = 512):
    self.predictor = predictor
    self.workdir = workdir
    self.orientation = predictor.orientation
    ratings = predictor.data.loaded.ratings
    self.user_ids, self.item_ids = ratings.user_ids, ratings.item_ids
    self.rating_scale = tuple(float(v) for v in predictor.data.loaded.rating_scale)
    self._clip = self.rating_scale if predictor.cfg.eval.clip_predictions else None
    train = predictor.data.train
    self.trained_items = np.bincount(train.item, minlength=len(self.item_ids)) > 0
    self._train_rows = train.to_csr(self.orientation)
    self._batch = batch_size
    self._users = pd.Index(self.user_ids)
    self._items = pd.Index(self.item_ids)
    self._titles: dict | None = predictor.titles
    self._known: dict[str, sp.csr_matrix] = {}
    self._fold_in = None
    pre = predictor.preprocessor
    stats = evaluate.TrainStats.from_ratings(train)
    col_mean = stats.item_mean if self.orientation == "user" else stats.user_mean
    trained_cols = np.bincount(self._train_rows.indices,
                               minlength=self._train_rows.shape[1]) > 0
    self.global_kernel = bool(getattr(predictor.model, "global_kernel_rows", 0))
    if self.global_kernel:
      # GLocal-K reads the whole matrix convolved (ratings as given: its configs keep
      # preprocessing off), every column of it, as in training.
      self._train_rows = predictor.train_rows
      trained_cols = np.ones(self._train_rows.shape[1], bool)
    self.rows_kwargs = dict(
        mid=pre.mid, half=pre.half, row_bias=bool(np.any(pre.row_bias)),
        trained_N=trained_cols,
        fallback_N=np.where(np.isnan(col_mean), stats.global_mean, col_mean))
    self._scores_fn = jax.jit(make_rows_fn(predictor.model, clip=None, **self.rows_kwargs))

  @property
  def params(self):
    return self.predictor.params

  @property
  def num_columns(self) -> int:
    """The width of a row the model reads: items (user-based) or users (item-based)."""
    return self._train_rows.shape[1]

  def rows_fn(self, *, clip: bool = True) -> Callable:
    """The pure (params, ratings_BxN, mask_BxN) -> ratings function of this model."""
    return make_rows_fn(self.predictor.model, clip=self._clip if clip else None,
                        **self.rows_kwargs)

  # --- ids -------------------------------------------------------------------------

  def _index(self, index: pd.Index, ids: Iterable[Any], what: str) -> np.ndarray:
    pos, given = ids_lib.positions(index, ids, f"{what}_ids")
    bad = ids_lib.values_at(given, pos == ids_lib.INVALID)
    if bad:
      raise ValueError(f"{what} id(s) {ids_lib.few(bad)} are not ids of this data set: its "
                       f"{what} ids are {ids_lib.kind_of(index)}, matched exactly")
    unknown = ids_lib.values_at(given, pos == ids_lib.UNKNOWN)
    if unknown:
      hint = "; a new user's ratings go to fold_in" if what == "user" else ""
      raise ValueError(f"unknown {what} id(s) {ids_lib.few(unknown)}{hint}")
    return pos

  def user_index(self, user_ids: Iterable[Any]) -> np.ndarray:
    """Indices of dataset user ids (ValueError for an unknown id or a value that is not
    an id: ids match exactly, see serving/ids.py)."""
    return self._index(self._users, user_ids, "user")

  def item_index(self, item_ids: Iterable[Any]) -> np.ndarray:
    """Indices of dataset item ids (ValueError for an unknown id or a value that is not
    an id)."""
    return self._index(self._items, item_ids, "item")

  def id_kind(self, what: str) -> str:
    """"integers" or "strings": the kind of the data set's user or item ids."""
    return ids_lib.kind_of(self._users if what == "user" else self._items)

  def lookup(self, ids: Iterable[Any], what: str) -> np.ndarray:
    """Indices of user (`what="user"`) or item ids without raising: ids.UNKNOWN (-1)
    for an id the run does not know, ids.INVALID (-2) for a value that is not an id."""
    if what not in ("user", "item"):
      raise ValueError(f"what must be 'user' or 'item', got {what!r}")
    return ids_lib.positions(self._users if what == "user" else self._items, ids,
                             f"{what}_ids")[0]

  @property
  def titles(self) -> dict | None:
    """{item id: title} from the data set's titles file, None when there is none."""
    return self._titles

  def set_titles(self, path: str) -> None:
    """Use this titles file (MovieLens or Netflix format) instead of the data set's."""
    self._titles = titles_lib.read_titles(path)

  # --- predictions -----------------------------------------------------------------

  def predict(self, user_ids: Sequence[Any], item_ids: Sequence[Any]) -> np.ndarray:
    """Predicted ratings of (user, item) pairs given by dataset ids."""
    users, items = self.user_index(user_ids), self.item_index(item_ids)
    if len(users) != len(items):
      raise ValueError(f"got {len(users)} users and {len(items)} items; pass one per pair")
    return self.predictor.predict(users, items)

  def scores(self, users: np.ndarray) -> np.ndarray:
    """float32[U, I] unclipped scores of every item for user indices `users` (integers
    in [0, number of users); ValueError otherwise)."""
    users = ids_lib.check_indices(users, len(self.user_ids), "user")
    if self.orientation == "user":
      out = np.zeros((len(users), len(self.item_ids)), np.float32)
      for start in range(0, len(users), self._batch):
        chunk = users[start:start + self._batch]
        out[start:start + len(chunk)] = self._rows(chunk)[:len(chunk)]
      return out
    out = np.zeros((len(self.item_ids), len(users)), np.float32)
    for start in range(0, len(self.item_ids), self._batch):
      chunk = np.arange(start, min(start + self._batch, len(self.item_ids)))
      out[chunk] = self._rows(chunk)[:len(chunk)][:, users]
    return out.T

  def _rows(self, rows: np.ndarray) -> np.ndarray:
    values, mask = _dense(self._train_rows, rows, self._batch)
    return np.asarray(self._scores_fn(self.params, jnp.asarray(values), jnp.asarray(mask)))

  # --- recommendations -------------------------------------------------------------

  def known_items(self, exclude: str = "all") -> sp.csr_matrix:
    """users x items, the ratings each user is known to have given: in the run's train
    part ("train"), or anywhere in the data set ("all")."""
    if exclude not in EXCLUDE:
      raise ValueError(f"exclude must be one of {EXCLUDE}, got {exclude!r}")
    if exclude not in self._known:
      part = (self.predictor.data.train if exclude == "train"
              else self.predictor.data.loaded.ratings)
      self._known[exclude] = part.to_csr("user")
    return self._known[exclude]

  def recommend(self, user_id: Any, k: int = 10, *, exclude: str = "all"
                ) -> list[Recommendation]:
    """The k best items for a known user, skipping items the user has rated."""
    return self.recommend_many([user_id], k, exclude=exclude)[0]

  def recommend_many(self, user_ids: Sequence[Any], k: int = 10, *, exclude: str = "all",
                     max_entries: int = 50_000_000) -> list[list[Recommendation]]:
    """`recommend` for many users; scores `max_entries` (user, item) pairs at a time.
    k must be a positive int (numpy ints too; not a bool or a float)."""
    k = topk.check_k(k)
    if exclude not in EXCLUDE:
      raise ValueError(f"exclude must be one of {EXCLUDE}, got {exclude!r}")
    users = self.user_index(user_ids)
    known = self.known_items(exclude)
    group = max(1, max_entries // max(len(self.item_ids), 1))
    out = []
    for start in range(0, len(users), group):
      chunk = users[start:start + group]
      scores = self.scores(chunk)
      for row, u in enumerate(chunk):
        allowed = self.trained_items.copy()
        allowed[known.indices[known.indptr[u]:known.indptr[u + 1]]] = False
        out.append(self.ranked(scores[row], allowed, k))
    return out

  def ranked(self, scores_I: np.ndarray, allowed_I: np.ndarray, k: int
             ) -> list[Recommendation]:
    """The k best `allowed_I` items by `scores_I` (unclipped scores over every item),
    as Recommendations."""
    k = topk.check_k(k)
    scores_I, allowed_I = np.asarray(scores_I), np.asarray(allowed_I)
    if scores_I.shape != (len(self.item_ids),) or allowed_I.shape != scores_I.shape:
      raise ValueError(f"scores_I and allowed_I must have shape ({len(self.item_ids)},) (one "
                       f"entry per item), got {scores_I.shape} and {allowed_I.shape}")
    # Validation's rule (topk.py): best first, equal scores in item-index order, so
    # the served list is the one the run's ranking metrics were measured on.
    best = topk.top_k_items(scores_I, k, allowed_I)
    preds = scores_I[best]
    if self._clip is not None:
      preds = np.clip(preds, *self._clip)
    names = titles_lib.lookup(self.titles, self.item_ids[best])
    return [Recommendation(self.item_ids[i].item() if hasattr(self.item_ids[i], "item")
                           else self.item_ids[i], float(p), float(scores_I[i]), t)
            for i, p, t in zip(best, preds, names)]

  # --- new users -------------------------------------------------------------------

  def fold_in(self, ratings: Mapping[Any, float] | Iterable[tuple[Any, float]], *,
              method: str = "auto") -> FoldIn:
    """Predictions for a user unseen in training, from their (item id, rating) pairs.

    method: "encode" (user-based models: the encoder's output for the ratings, which
    is what the exported function computes), "refine" (user-based, the default: that
    code refined to fit the given ratings through the decoder) or "readout"
    (item-based, the only way there: the user's output unit fitted on the item
    codes); "auto" picks "refine" or "readout". See fold_in.py. Items the model has
    no train ratings for are ignored (no trained weights); a user left with no
    usable rating gets the fallback (item means).
    """
    methods = FOLD_IN_METHODS[self.orientation]
    method = methods[0] if method == "auto" else method
    if method not in methods:
      raise ValueError(f"fold_in method {method!r} is not for a {self.orientation}-based "
                       f"model; use one of {', '.join(methods)}")
    items, values = ids_lib.rating_pairs(ratings, self.item_index, self.rating_scale)
    rated = np.zeros(len(self.item_ids), bool)
    rated[items] = True
    if method == "encode":
      scores = self._fold_in_rows(items[None, :], values[None, :])[0]
    else:
      scores = self._fold_in_model().scores(items, values)
    preds = scores if self._clip is None else np.clip(scores, *self._clip)
    return FoldIn(self.item_ids, scores, preds.astype(np.float32), rated, self)

  def _fold_in_rows(self, items_UxR: np.ndarray, values_UxR: np.ndarray) -> np.ndarray:
    num_items = len(self.item_ids)
    values = np.zeros((len(items_UxR), num_items), np.float32)
    mask = np.zeros((len(items_UxR), num_items), np.float32)
    rows = np.arange(len(items_UxR))[:, None]
    values[rows, items_UxR] = values_UxR
    mask[rows, items_UxR] = 1.0
    return np.asarray(self._scores_fn(self.params, jnp.asarray(values), jnp.asarray(mask)))

  def _fold_in_model(self):
    if self._fold_in is None:
      cls = (fold_in_lib.CodeFoldIn if self.orientation == "user"
             else fold_in_lib.ReadoutFoldIn)
      self._fold_in = cls.from_predictor(self.predictor)
    return self._fold_in

  def export(self, directory: str | None = None, *, overwrite: bool = False) -> str:
    """Writes the model as a portable jax.export file (see portable.py) under
    `directory` (default: workdir/export); returns its path. A directory that already
    holds an export is refused (FileExistsError) unless `overwrite`."""
    return portable.export(self, directory, overwrite=overwrite)


def load(workdir: str, which: str | int = "best") -> Model:
  """The trained model of a run's workdir: its "best" checkpoint (default), the
  "latest", or the checkpoint of a given step (an int or a string of digits).

  Reads only the workdir (config, data snapshot, checkpoint), so the model answers
  for the users and items it was trained on after the data files moved or changed.
  A `which` that is none of these (a bool, a float, a negative number) is a
  ValueError before anything is read; a step the run does not hold a
  FileNotFoundError naming the steps it has.
  """
  which = predict.parse_checkpoint(which, "which")
  return Model(predict.Predictor(workdir, which), workdir=workdir)
