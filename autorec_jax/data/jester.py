"""Jester dataset 1 (Goldberg et al., Eigentaste): the user x joke matrix layout.

The official files `jester-data-1.xls`, `-2.xls`, `-3.xls` (in `jester_dataset_1_N.zip`)
hold one row per user: column 0 is the number of jokes the user rated, columns 1..100
are jokes 1..100 with ratings in [-10, 10], and 99 means "not rated". The same matrix is
read from the .xls (needs the optional `xlrd` package), from a MATLAB .mat (variable `X`,
e.g. `jester3.mat`; v5, or v7.3 with the optional h5py), or from a delimited text/CSV
copy. Column 0 is checked against the row's count of rated jokes, so a shifted or
truncated row fails at its own row.

User ids are 1-based row numbers (plus an offset when parts are concatenated), item ids
are joke numbers 1..100. A row with no rated joke (count 0, every joke 99) is a user
without ratings: it yields no triplet, so that user is absent from the data, and the
rows after it keep their row-number ids. A matrix with no rated joke at all is an error.
Triplet files (`user_id,joke_id,rating`) are plain delimited text: see
`text.read_delimited`.
"""

from __future__ import annotations

import io
import os
from typing import Sequence

import numpy as np
import scipy.sparse as sp

from autorec_jax.data import masks, matfile, text
from autorec_jax.data.errors import DataError, DataFormatError

NOT_RATED = 99.0
NUM_JOKES = 100


def matrix_to_raw(x_UxC: np.ndarray, line_U: np.ndarray, path: str, *,
                  user_offset: int = 0, row_word: str = "line") -> text.RawRatings:
  """Checks a Jester matrix and turns it into triplets (row-major: user, then joke).

  Args:
    x_UxC: float matrix, C = 101 (count column + 100 jokes).
    line_U: 1-based line (or row) number of each matrix row in its file.
    path: the file, for messages.
    user_offset: added to the 1-based row number to form the user id.
    row_word: "line" or "row", how messages refer to a row.
  """
  x_UxC = np.asarray(x_UxC, dtype=np.float64)
  if x_UxC.ndim != 2 or x_UxC.shape[1] != NUM_JOKES + 1:
    raise DataFormatError(path, None, f"expected a matrix with {NUM_JOKES + 1} columns "
                          f"(count, then jokes 1..{NUM_JOKES}), got shape {x_UxC.shape}")
  if x_UxC.shape[0] == 0:
    raise DataFormatError(path, None, "expected ratings, got an empty matrix")
  finite_U = np.isfinite(x_UxC).all(axis=1)
  if not finite_U.all():
    r = int(np.argmin(finite_U))
    c = int(np.argmin(np.isfinite(x_UxC[r])))
    raise DataFormatError(path, int(line_U[r]), f"{row_word} {line_U[r]}: expected a "
                          f"number in column {c}, got {x_UxC[r, c]}")
  rated_UxJ = x_UxC[:, 1:] != NOT_RATED
  count_U = rated_UxJ.sum(axis=1)
  bad_U = x_UxC[:, 0] != count_U
  if bad_U.any():
    r = int(np.argmax(bad_U))
    raise DataFormatError(path, int(line_U[r]), f"{row_word} {line_U[r]}: expected column "
                          f"0 to count the rated jokes ({count_U[r]}), got {x_UxC[r, 0]:g}")
  rows, cols = np.nonzero(rated_UxJ)
  if not len(rows):
    raise DataFormatError(path, None, f"expected ratings, got none: every joke of all "
                          f"{len(x_UxC)} {row_word}s is {NOT_RATED:g} (not rated)")
  return text.RawRatings.single(
      path, user=rows.astype(np.int64) + 1 + user_offset, item=cols.astype(np.int64) + 1,
      rating=x_UxC[:, 1:][rated_UxJ], timestamp=None, line=np.asarray(line_U)[rows])


def _format_of(path, member: str | None) -> str:
  name = (member or os.fspath(path)).lower()
  name = name[:-3] if name.endswith(".gz") else name
  return os.path.splitext(name)[1]


def _read_mat(data: bytes, name: str) -> np.ndarray:
  """The Jester matrix of a .mat file: variable X, or its only variable."""
  names = matfile.variable_names(data, name)
  if masks.is_split_layout(names):
    raise masks.use_monti(name, f"the variables {text.shown_names(names)}")
  if "X" in names:
    key = "X"
  elif len(names) == 1:
    key = names[0]
  else:
    raise DataFormatError(name, None, f"expected a variable X, got "
                          f"{', '.join(names) or 'no variables'}")
  x = matfile.read_variables(data, name, [key])[key]
  return x.toarray() if sp.issparse(x) else x


def _read_xls(data: bytes, name: str) -> np.ndarray:
  try:
    import xlrd  # pylint: disable=import-outside-toplevel
  except ImportError:
    raise DataError(f"{name}: reading Excel .xls files needs the xlrd package "
                    "(pip install 'xlrd>=2.0.1'); or save the sheet as CSV") from None
  try:
    book = xlrd.open_workbook(file_contents=data, logfile=io.StringIO())
    sheet = book.sheet_by_index(0)
    rows = [sheet.row_values(r) for r in range(sheet.nrows)]
  except Exception as e:  # xlrd raises many types on corrupt files
    raise DataFormatError(name, None, f"expected an Excel .xls workbook, got an "
                          f"unreadable file ({type(e).__name__}: {e})") from None
  width = max((len(row) for row in rows), default=0)
  x = np.full((len(rows), width), np.nan)
  for r, row in enumerate(rows):
    for c, v in enumerate(row):
      if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise DataFormatError(name, r + 1, f"row {r + 1}: expected a number in column "
                              f"{c}, got {v!r}")
      x[r, c] = v
  return x


def _load_matrix(path, member: str | None) -> tuple[np.ndarray, np.ndarray, str, str]:
  """(matrix, line or row number per row, display name, "line" or "row")."""
  data, name = text.read_bytes(path, member)
  fmt = _format_of(path, member)
  if fmt == ".mat":
    x = _read_mat(data, name)
    return x, np.arange(1, len(x) + 1), name, "row"
  if fmt == ".xls":
    x = _read_xls(data, name)
    return x, np.arange(1, len(x) + 1), name, "row"
  layout = text.sniff(data, name)
  if layout.num_fields != NUM_JOKES + 1:
    raise DataFormatError(name, layout.header_lines + 1, f"expected {NUM_JOKES + 1} "
                          f"fields (count, then jokes 1..{NUM_JOKES}), got "
                          f"{layout.num_fields}")
  values, line = text.parse_table(data, name, layout,
                                  {c: "float" for c in range(NUM_JOKES + 1)})
  return np.stack([values[c] for c in range(NUM_JOKES + 1)], axis=1), line, name, "line"


def read_jester_matrix(path, member: str | None = None, *,
                       user_offset: int = 0) -> text.RawRatings:
  """Reads one Jester dataset 1 matrix (.xls, .mat, or delimited text; maybe zipped)."""
  x, line, name, row_word = _load_matrix(path, member)
  return matrix_to_raw(x, line, name, user_offset=user_offset, row_word=row_word)


def read_jester_parts(parts: Sequence[tuple[str, str | None]]) -> text.RawRatings:
  """Reads parts in order; part k's users are numbered after all rows of parts < k."""
  raws, offset = [], 0
  for path, member in parts:
    x, line, name, row_word = _load_matrix(path, member)
    raws.append(matrix_to_raw(x, line, name, user_offset=offset, row_word=row_word))
    offset += len(x)
  return text.concat(raws)
