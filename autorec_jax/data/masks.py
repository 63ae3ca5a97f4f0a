"""A rating matrix with split masks (Monti et al.'s layout), from .mat or .npz.

The 3000 x 3000 benchmark subsets of Monti et al. (Douban, Flixster, Yahoo! Music;
used by GC-MC, IGMC and GLocal-K) are MATLAB v7.3 files holding a rating matrix `M`
and two masks, `Otraining` and `Otest`. `read_split_matrix` reads that layout from a
MATLAB v7.3 (HDF5) or v5 .mat file or a NumPy .npz (each may be gzipped or the one
file of a zip), with an optional validation mask, under these names:

  rating matrix     M            or ratings
  training mask     Otraining    or train_mask
  test mask         Otest        or test_mask
  validation mask   Ovalidation  or valid_mask   (optional)

Rows are users and columns items, as MATLAB shows the matrix (`matfile` undoes the
transposed storage of v7.3) and as numpy holds an .npz array. Any of them may be
dense or sparse. A rating is a nonzero entry of the rating matrix (0 means "no
rating", so a rating of 0 cannot be stored in this layout); its part is the mask
that holds 1 there. Masks hold only 0s and 1s and are disjoint. A rating in no mask
and a mask entry on a 0 of the matrix are left out, each kind counted in one warning.

User and item ids are the 1-based row and column numbers (MATLAB's numbering, the
same numbers error messages give): a user or item without ratings is absent and the
others keep their numbers, as Jester's users do. Every fault is a DataFormatError
naming the file, the variable and, where there is one, the row and column.
"""

from __future__ import annotations

import dataclasses
import io
import os
import zipfile
import zlib

import numpy as np
import scipy.sparse as sp
from absl import logging

from autorec_jax.data import errors, matfile, text
from autorec_jax.data.errors import DataFormatError, DataNotFoundError

# Accepted variable names per role, Monti et al.'s first.
NAMES = {"ratings": ("M", "ratings"), "train": ("Otraining", "train_mask"),
         "test": ("Otest", "test_mask"), "valid": ("Ovalidation", "valid_mask")}
REQUIRED = ("ratings", "train", "test")
_WHAT = {"ratings": "rating matrix", "train": "training mask", "test": "test mask",
         "valid": "validation mask"}
# The part of each rating (`SplitMatrix.part`).
TRAIN, VALID, TEST = 0, 1, 2
_PART_OF = {"train": TRAIN, "valid": VALID, "test": TEST}
_PART_NAMES = {TRAIN: "a training rating", VALID: "a validation rating",
               TEST: "a test rating"}
USE_MONTI = "read it with --config.data.name=monti"
_FLOAT32_MAX = float(np.finfo(np.float32).max)


@dataclasses.dataclass(frozen=True, eq=False)
class SplitMatrix:
  """The ratings of a split matrix file and the part of each.

  Attributes:
    raw: the ratings, user and item ids the 1-based row and column numbers (`line`:
      the row), in row-major order.
    part: int8[N], TRAIN, VALID or TEST for each rating.
    variables: the variable name found for each role ("ratings", "train", "test",
      and "valid" when the file has a validation mask).
    shape: (rows, columns) of the rating matrix.
  """

  raw: text.RawRatings
  part: np.ndarray
  variables: dict[str, str]
  shape: tuple[int, int]

  @property
  def has_valid(self) -> bool:
    return "valid" in self.variables


def layout_text() -> str:
  """The layout as messages describe it."""
  return (f"a rating matrix {' or '.join(NAMES['ratings'])} with the masks "
          f"{' or '.join(NAMES['train'])} and {' or '.join(NAMES['test'])} (and "
          f"optionally {' or '.join(NAMES['valid'])})")


def is_split_layout(names) -> bool:
  """Whether variables `names` hold this layout's required roles (by any name)."""
  return all(any(n in names for n in NAMES[role]) for role in REQUIRED)


def use_monti(name: str, got: str) -> DataFormatError:
  """The error a reader of another format gives for a split matrix file."""
  return DataFormatError(name, None, f"expected ratings as text or a Jester matrix X, "
                         f"got {got}, a rating matrix with split masks; {USE_MONTI}")


def refuse_npz(path) -> None:
  """The DataFormatError for an .npz given to a reader of another format."""
  path = os.fspath(path)
  names = [m[:-4] if m.endswith(".npy") else m for m in text.zip_members(path)]
  shown = text.shown_names(names) or "no arrays"
  if is_split_layout(names):
    raise use_monti(path, f"the NumPy arrays {shown}")
  raise DataFormatError(path, None, f"expected ratings as text or a Jester matrix, got a "
                        f"NumPy .npz of the arrays {shown}; {layout_text()} is read with "
                        "--config.data.name=monti")


def find_file(path: str) -> str:
  """`path`, or for a folder the one .mat or .npz file in it."""
  if not os.path.isdir(path):
    return path
  names = sorted(n for n in errors.list_dir(path)
                 if n.lower().endswith((".mat", ".npz", ".mat.gz", ".npz.gz")) and
                 errors.is_file_like(os.path.join(path, n)))
  if not names:
    raise DataNotFoundError(f"{path}: no .mat or .npz file found; expected one holding "
                            f"{layout_text()} (e.g. Monti et al.'s "
                            "training_test_dataset.mat), or pass the file itself")
  if len(names) > 1:
    raise DataFormatError(path, None, f"expected one .mat or .npz file in the folder, got "
                          f"{text.shown_names(names)}; pass the one to read as the data "
                          "path (--config.data.path=FILE)")
  return os.path.join(path, names[0])


class _Variables:
  """The variables of a .mat or .npz file's contents: `names`, `read(key)`."""

  def __init__(self, data: bytes, name: str):
    self.name = name
    self._data = data
    self._npz = data.startswith(b"PK\x03\x04")
    if self._npz:
      try:
        self._arrays = np.load(io.BytesIO(data), allow_pickle=False)
        self.names = list(self._arrays.files)
      except (zipfile.BadZipFile, OSError, EOFError, ValueError, zlib.error) as e:
        raise DataFormatError(name, None, f"expected a complete NumPy .npz file, got a "
                              f"truncated or corrupt one ({e})") from None
    elif matfile.is_hdf5(data) or data.startswith(b"MATLAB") or name.lower().endswith(
        (".mat", ".mat.gz")):
      self.names = matfile.variable_names(data, name)
    else:
      raise DataFormatError(name, None, f"expected a MATLAB .mat (v5 or v7.3) or NumPy "
                            f".npz file holding {layout_text()}, got neither")

  def read(self, key: str):
    if not self._npz:
      return matfile.read_variables(self._data, self.name, [key])[key]
    try:
      x = self._arrays[key]
    except (OSError, EOFError, ValueError, zipfile.BadZipFile, zlib.error) as e:
      raise DataFormatError(self.name, None, f"array {key}: expected a readable numeric "
                            f"array, got an unreadable one ({e})") from None
    return matfile.check_numeric(x, self.name, key)


def _container(path: str) -> tuple[bytes, str]:
  """A file's contents and display name: an .npz whole, else as `text.read_bytes`
  (plain, gunzipped, or the one file of a zip)."""
  with errors.open_file(path) as f:
    head = errors.read_from(f, path, 4)
  if head in (b"PK\x03\x04", b"PK\x05\x06"):
    members = text.zip_members(path)
    if members and all(m.endswith(".npy") for m in members):
      return errors.read_file(path), path
  return text.read_bytes(path)


def _roles(names: list[str], name: str) -> dict[str, str]:
  """The variable of each role present; a missing required role is an error."""
  found = {}
  for role, candidates in NAMES.items():
    present = [c for c in candidates if c in names]
    if len(present) > 1:
      raise DataFormatError(name, None, f"expected one {_WHAT[role]}, got both "
                            f"{' and '.join(present)}; keep one")
    if present:
      found[role] = present[0]
  missing = [" or ".join(NAMES[r]) for r in REQUIRED if r not in found]
  if missing:
    shown = text.shown_names(names) or "none"
    raise DataFormatError(name, None, f"expected {layout_text()}, got the variables "
                          f"{shown}: no {', no '.join(missing)}")
  return found


def _at(r: int, c: int) -> str:
  return f"row {r + 1}, column {c + 1} (1-based)"


def _entries(x, name: str, key: str, shape: tuple[int, int] | None, ratings_key: str):
  """(rows, columns, values) of the nonzero entries of a 2-D matrix, row-major.

  Non-finite values anywhere are an error, and so is a shape other than `shape`."""
  if not sp.issparse(x):
    x = np.asarray(x)
  if x.ndim != 2:
    raise DataFormatError(name, None, f"variable {key}: expected a 2-D matrix (rows "
                          f"users, columns items), got shape {tuple(x.shape)}")
  if shape is not None and tuple(x.shape) != shape:
    raise DataFormatError(name, None, f"variable {key}: expected the shape of "
                          f"{ratings_key}, {shape[0]} x {shape[1]} (users x items), got "
                          f"{x.shape[0]} x {x.shape[1]}")
  floating = np.issubdtype(x.dtype, np.floating)
  if sp.issparse(x):
    csr = sp.csr_matrix(x)
    csr.sum_duplicates()
    rows = np.repeat(np.arange(csr.shape[0], dtype=np.int64), np.diff(csr.indptr))
    cols, values = csr.indices.astype(np.int64), csr.data
    if floating and not np.isfinite(values).all():
      k = int(np.argmin(np.isfinite(values)))
      raise DataFormatError(name, None, f"variable {key}, {_at(rows[k], cols[k])}: "
                            f"expected a finite number, got {values[k]}")
    keep = values != 0
    rows, cols, values = rows[keep], cols[keep], values[keep]
  else:
    if floating:
      finite = np.isfinite(x)
      if not finite.all():
        r, c = (int(i) for i in np.argwhere(~finite)[0])
        raise DataFormatError(name, None, f"variable {key}, {_at(r, c)}: expected a "
                              f"finite number, got {x[r, c]}")
    rows, cols = np.nonzero(x)
    values = x[rows, cols]
  return rows.astype(np.int64), cols.astype(np.int64), values.astype(np.float64)


def read_split_matrix(path) -> SplitMatrix:
  """Reads a rating matrix with split masks (see the module docstring).

  Raises:
    DataNotFoundError, DataAccessError: `path` is missing or not a readable file.
    DataError: a MATLAB v7.3 file and no h5py installed (the message names the extra).
    DataFormatError: a missing variable, a shape that differs from the rating
      matrix's, a non-finite value, a mask value other than 0 and 1, overlapping
      masks, no training rating, a rating beyond float32, or a corrupt file.
  """
  path = os.fspath(path)
  errors.check_file(path)
  data, name = _container(path)
  variables = _Variables(data, name)
  roles = _roles(variables.names, name)
  m_key = roles["ratings"]
  matrix = variables.read(m_key)
  rows, cols, values = _entries(matrix, name, m_key, None, m_key)
  shape = (int(matrix.shape[0]), int(matrix.shape[1]))
  del matrix
  keys = rows * shape[1] + cols  # row-major, so sorted
  part = np.full(len(keys), -1, np.int8)
  mask_keys, unrated = {}, {}
  for role in ("train", "valid", "test"):
    if role not in roles:
      continue
    key = roles[role]
    r, c, v = _entries(variables.read(key), name, key, shape, m_key)
    bad = v != 1
    if bad.any():
      k = int(np.argmax(bad))
      raise DataFormatError(name, None, f"variable {key}, {_at(r[k], c[k])}: expected a "
                            f"mask of 0s and 1s, got {v[k]:g}")
    mask = r * shape[1] + c
    for other, other_mask in mask_keys.items():
      both = np.intersect1d(mask, other_mask, assume_unique=True)
      if len(both):
        raise DataFormatError(name, None, f"variables {other} and {key} overlap: expected "
                              f"disjoint masks (each rating in one part), got "
                              f"{_at(*divmod(int(both[0]), shape[1]))} in both ({len(both)} "
                              f"entr{'y' if len(both) == 1 else 'ies'} in both)")
    mask_keys[key] = mask
    pos = np.minimum(np.searchsorted(keys, mask), max(len(keys) - 1, 0))
    rated = (keys[pos] == mask) if len(keys) else np.zeros(len(mask), bool)
    part[pos[rated]] = _PART_OF[role]
    unrated[key] = int(np.count_nonzero(~rated))
  if not np.any(part == TRAIN):
    raise DataFormatError(name, None, f"variable {roles['train']}: expected at least one "
                          f"training rating (an entry that is 1 in {roles['train']} and "
                          f"nonzero in {m_key}), got none")
  _warn_left_out(name, m_key, part, unrated, list(mask_keys))
  keep = part >= 0
  rows, cols, values, part = rows[keep], cols[keep], values[keep], part[keep]
  big = np.abs(values) > _FLOAT32_MAX
  if big.any():
    k = int(np.argmax(big))
    raise DataFormatError(name, None, f"variable {m_key}, {_at(rows[k], cols[k])}: "
                          f"expected a rating within +-{_FLOAT32_MAX:.4g} (ratings are "
                          f"stored as float32), got {values[k]:g}")
  raw = text.RawRatings.single(name, user=rows + 1, item=cols + 1, rating=values,
                               timestamp=None, line=rows + 1)
  logging.info("%s: %d x %d rating matrix %s, %d ratings: %d train, %d valid, %d test",
               name, shape[0], shape[1], m_key, len(raw), np.count_nonzero(part == TRAIN),
               np.count_nonzero(part == VALID), np.count_nonzero(part == TEST))
  return SplitMatrix(raw=raw, part=part, variables=roles, shape=shape)


def _warn_left_out(name: str, m_key: str, part: np.ndarray, unrated: dict[str, int],
                   mask_names: list[str]) -> None:
  """One warning per kind of entry that is left out: ratings in no mask, and mask
  entries on a 0 of the rating matrix."""
  none = int(np.count_nonzero(part < 0))
  if none:
    logging.warning("%s: %d of the %d ratings in %s are in no mask (%s); they are left "
                    "out", name, none, len(part), m_key, ", ".join(mask_names))
  if any(unrated.values()):
    counts = ", ".join(f"{n} of {key}" for key, n in unrated.items() if n)
    logging.warning("%s: mask entries on a 0 of %s (no rating there) are left out: %s",
                    name, m_key, counts)


def check_scale(matrix: SplitMatrix, scale: tuple[float, float], origin: str) -> None:
  """DataFormatError at the first rating outside `scale` (`origin`: where it came
  from, for the message), naming its variable, row, column and part."""
  lo, hi = scale
  rating = matrix.raw.rating
  bad = (rating < lo) | (rating > hi)
  if bad.any():
    k = int(np.argmax(bad))
    r, c = int(matrix.raw.user[k]) - 1, int(matrix.raw.item[k]) - 1
    raise DataFormatError(matrix.raw.paths[0], None, f"variable "
                          f"{matrix.variables['ratings']}, {_at(r, c)}, "
                          f"{_PART_NAMES[int(matrix.part[k])]}: expected a rating in "
                          f"[{lo:g}, {hi:g}], got {rating[k]:g}; the scale is {origin} "
                          "(widen it deliberately with --config.data.rating_min and "
                          "--config.data.rating_max)")
