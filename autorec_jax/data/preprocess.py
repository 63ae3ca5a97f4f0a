"""Rating normalisation and bias removal (Strub & Mary 2015, section 4.1).

The model sees ratings mapped affinely to [-1, 1] (when `scale` is on) with a per-row
bias removed (when `bias` is "row": the user's mean for a U-encoder, the item's mean
for a V-encoder), all computed on train ratings only. Predictions are mapped back,
bias added, before any metric, so RMSE and MAE are on the original rating scale.
With both off this is the identity and the model sees raw ratings (DeepRec).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from autorec_jax.data.types import Ratings

BIASES = ("none", "row")


@dataclasses.dataclass(frozen=True)
class Preprocessor:
  """model value = (rating - mid) / half - row_bias[row];  rating = inverse of that.

  Attributes:
    mid, half: the affine scaling (0 and 1 when scaling is off).
    row_bias: float32[num_rows] bias per row of the orientation, in model units
      (0 for rows without train ratings and when bias removal is off).
    orientation: "user" or "item": which index is the row.
  """

  mid: float
  half: float
  row_bias: np.ndarray
  orientation: str

  @classmethod
  def fit(cls, train: Ratings, *, orientation: str, scale: bool,
          rating_scale: tuple[float, float], bias: str) -> "Preprocessor":
    if bias not in BIASES:
      raise ValueError(f"preprocess.bias={bias!r} must be one of {BIASES}")
    lo, hi = rating_scale
    mid, half = ((lo + hi) / 2.0, (hi - lo) / 2.0) if scale else (0.0, 1.0)
    rows = train.user if orientation == "user" else train.item
    num_rows = train.num_users if orientation == "user" else train.num_items
    row_bias = np.zeros(num_rows, np.float32)
    if bias == "row":
      scaled = (train.rating.astype(np.float64) - mid) / half
      count = np.bincount(rows, minlength=num_rows)
      total = np.bincount(rows, weights=scaled, minlength=num_rows)
      row_bias = np.where(count > 0, total / np.maximum(count, 1), 0.0).astype(np.float32)
    return cls(float(mid), float(half), row_bias, orientation)

  @property
  def is_identity(self) -> bool:
    return self.mid == 0.0 and self.half == 1.0 and not np.any(self.row_bias)

  def _rows(self, ratings: Ratings) -> np.ndarray:
    return ratings.user if self.orientation == "user" else ratings.item

  def transform(self, ratings: Ratings) -> Ratings:
    """Ratings in model units (same index space)."""
    if self.is_identity:
      return ratings
    value = (ratings.rating - self.mid) / self.half - self.row_bias[self._rows(ratings)]
    return dataclasses.replace(ratings, rating=value.astype(np.float32))

  def to_model_units(self, rating: float) -> float:
    """A rating value on the data's scale in model units, before bias removal."""
    return (rating - self.mid) / self.half

  def inverse(self, pred_BxI, row_bias_B):
    """Model outputs of rows with these biases back on the rating scale (numpy or jax)."""
    return (pred_BxI + row_bias_B[:, None]) * self.half + self.mid
