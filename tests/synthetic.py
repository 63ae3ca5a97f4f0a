"""Small synthetic rating files for end-to-end tests (no real data needed)."""

from __future__ import annotations

import pathlib

import numpy as np


def write_ratings_csv(path: pathlib.Path, *, num_users: int = 120, num_items: int = 48,
                      density: float = 0.3, seed: int = 0) -> pathlib.Path:
  """A low-rank 1..5 rating matrix sampled at `density`, as `user_id,item_id,rating`.

  Ids start at 1001 and 501 so tests notice any confusion of id and index.
  """
  rng = np.random.default_rng(seed)
  u = rng.normal(size=(num_users, 3))
  v = rng.normal(size=(num_items, 3))
  scores = u @ v.T
  ratings = np.clip(np.round(3 + scores / scores.std() * 1.2), 1, 5).astype(int)
  observed = rng.random((num_users, num_items)) < density
  observed[np.arange(num_users), rng.integers(0, num_items, num_users)] = True
  rows, cols = np.nonzero(observed)
  lines = ["user_id,item_id,rating"]
  lines += [f"{1001 + r},{501 + c},{ratings[r, c]}" for r, c in zip(rows, cols)]
  path.write_text("\n".join(lines) + "\n")
  return path
