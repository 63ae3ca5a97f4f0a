"""The canonical in-memory form of a ratings data set.

Every reader ends in `Ratings`: dense int32 user and item indices, float32 ratings,
optional int64 timestamps (seconds since the Unix epoch), and the maps from index back
to the dataset's original ids. Splits are index arrays into one `Ratings`, so train,
validation and test always share one index space and an id unseen in train is simply a
row or column with no train ratings.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import scipy.sparse as sp


@dataclasses.dataclass(frozen=True, eq=False)
class Ratings:
  """A set of (user, item, rating[, timestamp]) triples over a fixed index space.

  Attributes:
    user: int32[N] user index in [0, num_users).
    item: int32[N] item index in [0, num_items).
    rating: float32[N] rating on the dataset's own scale.
    timestamp: int64[N] seconds since the epoch, or None when the source has none.
    user_ids: [num_users] original id of each user index (int64, or str objects).
    item_ids: [num_items] original id of each item index.
    source: where the data came from (a path), for messages.
  """

  user: np.ndarray
  item: np.ndarray
  rating: np.ndarray
  timestamp: np.ndarray | None
  user_ids: np.ndarray
  item_ids: np.ndarray
  source: str = ""

  def __post_init__(self):
    n = len(self.rating)
    if len(self.user) != n or len(self.item) != n:
      raise ValueError("user, item and rating must have one entry per rating")
    if self.timestamp is not None and len(self.timestamp) != n:
      raise ValueError("timestamp must have one entry per rating")

  @property
  def num_users(self) -> int:
    return len(self.user_ids)

  @property
  def num_items(self) -> int:
    return len(self.item_ids)

  @property
  def num_ratings(self) -> int:
    return len(self.rating)

  def subset(self, index: np.ndarray) -> "Ratings":
    """The ratings at `index` (positions or a boolean mask), same index space and maps."""
    ts = None if self.timestamp is None else self.timestamp[index]
    return dataclasses.replace(
        self, user=self.user[index], item=self.item[index],
        rating=self.rating[index], timestamp=ts)

  def to_csr(self, orientation: str = "user") -> sp.csr_matrix:
    """Sparse float32 matrix: users x items for "user", items x users for "item".

    Duplicate (user, item) pairs must have been resolved by the reader; stored zeros
    are kept explicitly (a rating may be 0 on some scales, e.g. Jester).
    """
    if orientation == "user":
      rows, cols, shape = self.user, self.item, (self.num_users, self.num_items)
    elif orientation == "item":
      rows, cols, shape = self.item, self.user, (self.num_items, self.num_users)
    else:
      raise ValueError(f"orientation must be 'user' or 'item', got {orientation!r}")
    order = np.lexsort((cols, rows))
    rows, cols = rows[order], cols[order]
    indptr = np.zeros(shape[0] + 1, dtype=np.int64)
    np.cumsum(np.bincount(rows, minlength=shape[0]), out=indptr[1:])
    return sp.csr_matrix(
        (self.rating[order].astype(np.float32), cols.astype(np.int32), indptr),
        shape=shape)


def index_ratings(user_raw: np.ndarray, item_raw: np.ndarray, rating: np.ndarray,
                  timestamp: np.ndarray | None = None, *, source: str = "") -> Ratings:
  """Builds `Ratings` from original ids, numbering users and items in sorted id order."""
  user_ids, user = np.unique(user_raw, return_inverse=True)
  item_ids, item = np.unique(item_raw, return_inverse=True)
  ts = None if timestamp is None else np.asarray(timestamp, dtype=np.int64)
  return Ratings(user=user.astype(np.int32).ravel(), item=item.astype(np.int32).ravel(),
                 rating=np.asarray(rating, dtype=np.float32), timestamp=ts,
                 user_ids=user_ids, item_ids=item_ids, source=str(source))
