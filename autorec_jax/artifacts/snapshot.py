"""What a trained run keeps of its data, so that it is served without the data files.

A run's workdir holds, beside its config and checkpoints:

  data.npz         the id maps, every rating of the data set with the part it fell in
                   (train, valid, test, or none of them), the rating scale, the item
                   titles, and the preprocessing statistics fitted on train;
  data_files.json  each data file the run was trained on, with its size and sha256.

Serving (`autorec_jax.serving`) reads the first instead of re-reading and re-splitting
the data, so a run keeps answering for the users and items it was trained on after
its data files were edited, moved or deleted. Training compares the second with the
files it is about to resume on and refuses to go on when one changed.
"""

from __future__ import annotations

import hashlib
import json
import os
from typing import Sequence

import numpy as np
from absl import logging

from autorec_jax.data import titles as titles_lib
from autorec_jax.data.datasets import LoadedData
from autorec_jax.data.errors import DataError
from autorec_jax.data.preprocess import Preprocessor
from autorec_jax.data.run_data import RunData
from autorec_jax.data.splits import Split
from autorec_jax.data.types import Ratings

SNAPSHOT_FILE = "data.npz"
FINGERPRINT_FILE = "data_files.json"
# The part each rating fell in, as stored in data.npz.
_PARTS = {"train": 0, "valid": 1, "test": 2}
_NONE = -1


class DataChanged(DataError):
  """A data file differs from the one the run in a workdir was trained on."""


def _id_array(ids: np.ndarray) -> np.ndarray:
  """Ids as an array np.savez writes without pickling (object str ids -> unicode)."""
  ids = np.asarray(ids)
  return ids.astype(str) if ids.dtype == object else ids


def _atomic_savez(path: str, **arrays) -> None:
  """np.savez to `path` through a temporary file: a failed write (a full disk) leaves
  neither a partial file nor the temporary one, and its OSError names `path`."""
  tmp = f"{path}.tmp.npz"
  try:
    np.savez(tmp, **arrays)
    os.replace(tmp, path)
  except OSError as e:
    if os.path.exists(tmp):
      os.remove(tmp)
    raise OSError(e.errno, e.strerror, path) from e


def save(workdir: str, data: RunData, pre: Preprocessor | None) -> None:
  """Writes workdir/data.npz: `data`'s ratings, parts, id maps and scale, the item
  titles of the data set's titles file (when it has a readable one), and `pre`'s
  statistics (when given)."""
  ratings = data.loaded.ratings
  titles = None
  if data.loaded.titles_path:
    try:
      titles = titles_lib.read_titles(data.loaded.titles_path)
    except DataError as e:
      logging.warning("item titles left out of the run: %s", e)
  part = np.full(ratings.num_ratings, _NONE, np.int8)
  for name, code in _PARTS.items():
    part[getattr(data.split, name)] = code
  arrays = {
      "user": ratings.user, "item": ratings.item, "rating": ratings.rating, "part": part,
      "user_ids": _id_array(ratings.user_ids), "item_ids": _id_array(ratings.item_ids),
      "rating_scale": np.asarray(data.loaded.rating_scale, np.float64),
      "source": np.asarray(ratings.source),
  }
  if titles:
    arrays["title_ids"] = np.asarray(list(titles.keys()), np.int64)
    arrays["titles"] = np.asarray(list(titles.values()), str)
  if pre is not None:
    arrays.update(pre_mid=np.float64(pre.mid), pre_half=np.float64(pre.half),
                  pre_row_bias=pre.row_bias, pre_orientation=np.asarray(pre.orientation))
  _atomic_savez(os.path.join(workdir, SNAPSHOT_FILE), **arrays)


class Snapshot:
  """A run's data as saved in its workdir.

  Attributes:
    data: RunData with the loaded ratings (id maps, rating scale), the split and the
      train, valid and test parts, as the run had them.
    pre: the Preprocessor fitted on train (None for runs without one: factorization).
    titles: {item id: title} or None.
  """

  def __init__(self, data: RunData, pre: Preprocessor | None, titles: dict | None):
    self.data, self.pre, self.titles = data, pre, titles


def _ids(ids: np.ndarray) -> np.ndarray:
  """Saved ids back as the readers make them (str ids are object arrays)."""
  return ids.astype(object) if ids.dtype.kind == "U" else ids


def load(workdir: str) -> Snapshot:
  """Reads workdir/data.npz (DataError naming the file when missing or unreadable)."""
  path = os.path.join(workdir, SNAPSHOT_FILE)
  if not os.path.isfile(path):
    raise DataError(f"{path}: missing; {workdir} is not a trained run's workdir (or was "
                    "trained by an older version: train it again)")
  try:
    with np.load(path, allow_pickle=False) as z:
      a = {k: z[k] for k in z.files}
  except (OSError, ValueError, EOFError) as e:
    raise DataError(f"{path}: unreadable ({e})") from e
  ratings = Ratings(user=a["user"], item=a["item"], rating=a["rating"], timestamp=None,
                    user_ids=_ids(a["user_ids"]), item_ids=_ids(a["item_ids"]),
                    source=str(a["source"]))
  part = a["part"]
  split = Split(**{name: np.flatnonzero(part == code) for name, code in _PARTS.items()})
  scale = tuple(float(v) for v in a["rating_scale"])
  loaded = LoadedData(ratings=ratings, is_predefined_test=None, rating_scale=scale,
                      titles_path=None)
  data = RunData(loaded, split, ratings.subset(split.train), ratings.subset(split.valid),
                 ratings.subset(split.test))
  pre = None
  if "pre_mid" in a:
    pre = Preprocessor(float(a["pre_mid"]), float(a["pre_half"]), a["pre_row_bias"],
                       str(a["pre_orientation"]))
  titles = None
  if "titles" in a:
    titles = dict(zip(a["title_ids"].tolist(), a["titles"].tolist()))
  return Snapshot(data, pre, titles)


def fingerprint(files: Sequence[str]) -> list[dict]:
  """[{"path", "size", "sha256"}] of each file."""
  out = []
  for path in files:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
      for block in iter(lambda: f.read(1 << 20), b""):  # pylint: disable=cell-var-from-loop
        digest.update(block)
    out.append({"path": os.path.abspath(path), "size": os.path.getsize(path),
                "sha256": digest.hexdigest()})
  return out


def write_fingerprint(workdir: str, files: Sequence[str]) -> None:
  """Records the data files a run is trained on (workdir/data_files.json)."""
  path = os.path.join(workdir, FINGERPRINT_FILE)
  tmp = f"{path}.tmp"
  try:
    with open(tmp, "w", encoding="utf-8") as f:
      json.dump({"files": fingerprint(files)}, f, indent=2)
    os.replace(tmp, path)
  except OSError as e:
    if os.path.exists(tmp):
      os.remove(tmp)
    raise OSError(e.errno, e.strerror, path) from e


def check_fingerprint(workdir: str, files: Sequence[str], data: RunData | None = None
                      ) -> None:
  """Raises DataChanged naming the first data file whose size or content differs from
  the recorded one (files are matched in the order they are read: data moved to
  another folder unchanged is still the same data). Without the record, `data` (the
  run's data as loaded now) is compared with the ratings and split saved in data.npz
  and, when they match, the record is written again; with neither file nothing is
  checked."""
  path = os.path.join(workdir, FINGERPRINT_FILE)
  hint = (f"the run in {workdir} was trained on other data; restore the file, use "
          "another --workdir, or pass --overwrite to start afresh")
  if not os.path.exists(path):
    if data is not None and os.path.isfile(os.path.join(workdir, SNAPSHOT_FILE)):
      if not _same_data(load(workdir).data, data):
        raise DataChanged(f"{', '.join(files) or data.loaded.ratings.source}: not the "
                          f"ratings saved in {os.path.join(workdir, SNAPSHOT_FILE)} "
                          f"({FINGERPRINT_FILE} is gone); {hint}")
      write_fingerprint(workdir, files)
    return
  try:
    with open(path, encoding="utf-8") as f:
      old = json.load(f)["files"]
    old = [{"path": str(o["path"]), "size": int(o["size"]), "sha256": str(o["sha256"])}
           for o in old]
  except (ValueError, KeyError, TypeError) as e:
    raise DataChanged(f"{path}: damaged, expected the JSON record of the data files a run "
                      f"was trained on ({type(e).__name__}: {e}); restore it, or pass "
                      "--overwrite to start afresh") from None
  new = fingerprint(files)
  for o, n in zip(old, new):
    if o["size"] != n["size"]:
      raise DataChanged(f"{n['path']}: changed since training ({o['size']} bytes then, "
                        f"{n['size']} now); {hint}")
    if o["sha256"] != n["sha256"]:
      raise DataChanged(f"{n['path']}: changed since training (same size, other "
                        f"content); {hint}")
  if len(old) != len(new):
    what = (f"{new[len(old)]['path']}: read now but not in training" if len(new) > len(old)
            else f"{old[len(new)]['path']}: read in training but not now")
    raise DataChanged(f"{what}; {hint}")


def _same_data(saved: RunData, data: RunData) -> bool:
  """Whether `data` holds the ratings, ids and split parts of the `saved` snapshot."""
  a, b = saved.loaded.ratings, data.loaded.ratings
  if a.num_ratings != b.num_ratings:
    return False
  arrays = [(a.user, b.user), (a.item, b.item), (a.rating, b.rating),
            (_id_array(a.user_ids), _id_array(b.user_ids)),
            (_id_array(a.item_ids), _id_array(b.item_ids))]
  arrays += [(getattr(saved.split, n), getattr(data.split, n)) for n in _PARTS]
  return all(x.shape == y.shape and np.array_equal(x, y) for x, y in arrays)
