"""Netflix Prize file formats: training set, movie titles, probe, qualifying, predictions.

Every Netflix ratings file is a run of blocks: a `MovieID:` line, then lines about that
movie. The training set has `CustomerID,Rating,YYYY-MM-DD` lines and comes as one
`mv_NNNNNNN.txt` file per movie (a folder, or `training_set.tar` read as a stream,
never unpacked) or as Kaggle's `combined_data_*.txt` (many blocks per file);
`probe.txt` has `CustomerID` lines, `qualifying.txt` `CustomerID,YYYY-MM-DD` lines and a
prediction file one rating per line.

Parsing is vectorised numpy over whole buffers of bytes (no Python object per rating):
the fixed-width tail of each line (`,R,YYYY-MM-DD`) is gathered as one byte matrix and
the variable-width CustomerID is read right-aligned, one digit column at a time. Dates
become int32 days since 1970-01-01. When any check fails, the first bad line is
rechecked in Python and reported as `DataFormatError(file, line, ...)`, where the file
of a tar member reads `archive.tar:member`.
"""

from __future__ import annotations

import dataclasses
import datetime
import functools
import os
import re
import tarfile
import zlib
from typing import Callable, Iterator, Sequence

import numpy as np

from autorec_jax.data import errors
from autorec_jax.data.errors import DataFormatError, DataNotFoundError

MV_FILE = re.compile(r"mv_(\d+)\.txt")
COMBINED_FILE = re.compile(r"combined_data_(\d+)\.txt")
_MAX_INT32 = 2**31 - 1
_ZERO, _NL, _COMMA, _DASH, _COLON = 48, 10, 44, 45, 58
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_COMPRESSED_MAGIC = (b"\x1f\x8b", b"BZh", b"\xfd7zXZ")  # gzip, bzip2, xz


@dataclasses.dataclass(frozen=True, eq=False)
class TrainingRatings:
  """The training set as four aligned arrays, ordered by movie, then as in the file.

  Attributes:
    movie: int32[N] MovieID.
    customer: int32[N] CustomerID.
    rating: int8[N] rating 1..5.
    day: int32[N] rating date as days since 1970-01-01.
    source: the input that was read, for messages.
  """

  movie: np.ndarray
  customer: np.ndarray
  rating: np.ndarray
  day: np.ndarray
  source: str = ""

  def __len__(self) -> int:
    return len(self.rating)


@dataclasses.dataclass(frozen=True, eq=False)
class MovieBlocks:
  """The lines of a probe, qualifying or prediction file, with its block structure.

  Attributes:
    movie: int32[N] MovieID of each line's block.
    customer: int32[N] CustomerID (probe, qualifying), or None (predictions).
    day: int32[N] date as days since 1970-01-01 (qualifying), or None.
    value: float64[N] predicted rating (prediction files), or None.
    block_movie: int32[B] MovieID of each `MovieID:` line, in file order.
    block_start: int64[B] index of the first line of each block (blocks may be empty).
  """

  movie: np.ndarray
  customer: np.ndarray | None
  day: np.ndarray | None
  value: np.ndarray | None
  block_movie: np.ndarray
  block_start: np.ndarray

  def __len__(self) -> int:
    return len(self.movie)


@dataclasses.dataclass(frozen=True, eq=False)
class MovieTitles:
  """movie_titles.txt. `year` is 0 where the file says NULL."""

  movie: np.ndarray  # int32[M]
  year: np.ndarray  # int32[M]
  title: tuple[str, ...]


def date_to_day(date: str) -> int:
  """Days since 1970-01-01 of an ISO date `YYYY-MM-DD`."""
  return (datetime.date.fromisoformat(date) - datetime.date(1970, 1, 1)).days


def day_to_date(day: int) -> str:
  return (datetime.date(1970, 1, 1) + datetime.timedelta(days=int(day))).isoformat()


# ----------------------------------------------------------------------------------------
# Vectorised pieces. A buffer starts with _PAD empty lines (skipped as blank), so the
# fixed-width windows read before a line's end never start before the buffer.

_PAD = 16
_TABLE_FIRST_YEAR = 1900  # dates in 1900..2155 are looked up, others computed
_INVALID_DAY = np.iinfo(np.int32).min


def _days_from_civil(y: np.ndarray, m: np.ndarray, d: np.ndarray) -> np.ndarray:
  """Days since 1970-01-01 of valid (y, m, d) int32 arrays (H. Hinnant's algorithm)."""
  y = y - (m <= 2)
  era = y // 400
  yoe = y - era * 400
  doy = (153 * np.where(m > 2, m - 3, m + 9) + 2) // 5 + d - 1
  doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
  return (era * 146097 + doe - 719468).astype(np.int32)


def _valid_date(y: np.ndarray, m: np.ndarray, d: np.ndarray) -> np.ndarray:
  leap = ((y % 4 == 0) & (y % 100 != 0)) | (y % 400 == 0)
  dim = np.array([0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31], np.int32)
  mm = np.clip(m, 0, 12)
  return (m >= 1) & (m <= 12) & (d >= 1) & (d <= dim[mm] + (leap & (mm == 2)))


@functools.cache
def _day_table() -> np.ndarray:
  """int32[256 * 16 * 32]: day of ((year - 1900) * 16 + month) * 32 + day, or invalid."""
  y, m, d = np.meshgrid(np.arange(_TABLE_FIRST_YEAR, _TABLE_FIRST_YEAR + 256),
                        np.arange(16), np.arange(32), indexing="ij")
  days = np.where(_valid_date(y, m, d), _days_from_civil(y, m, d), _INVALID_DAY)
  return days.astype(np.int32).ravel()


def _dates(t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  """int32 days since 1970 of uint8[N, 10] rows `YYYY-MM-DD`, and where they are valid."""
  digit = t - np.uint8(_ZERO)  # non-digits wrap to > 9
  ok = np.all(digit[:, [0, 1, 2, 3, 5, 6, 8, 9]] <= 9, axis=1)
  ok &= (t[:, 4] == _DASH) & (t[:, 7] == _DASH)
  col = [digit[:, k].astype(np.int32) for k in range(10)]
  y = col[0] * 1000 + col[1] * 100 + col[2] * 10 + col[3]
  m = col[5] * 10 + col[6]
  d = col[8] * 10 + col[9]
  in_table = (y >= _TABLE_FIRST_YEAR) & (y < _TABLE_FIRST_YEAR + 256) & (m < 16) & (d < 32)
  key = np.where(in_table, ((y - _TABLE_FIRST_YEAR) * 16 + m) * 32 + d, 0)
  day = _day_table()[key]
  ok &= ~in_table | (day != _INVALID_DAY)
  rare = np.flatnonzero(~in_table & ok)
  if len(rare):
    yr, mr, dr = y[rare], m[rare], d[rare]
    ok[rare] = _valid_date(yr, mr, dr)
    day[rare] = _days_from_civil(yr, mr, dr)
  return day, ok


def _uint_before(a: np.ndarray, ends: np.ndarray, lengths: np.ndarray,
                 max_digits: int = 10) -> tuple[np.ndarray, np.ndarray]:
  """int64 values of the `lengths`-digit numbers ending before `ends`, and validity.

  Valid: 1..max_digits ASCII digits, at most 2**31 - 1. The numbers are read
  right-aligned from one uint8[N, width] window gather, width the longest number.
  """
  ok = (lengths >= 1) & (lengths <= max_digits)
  width = max(1, min(int(lengths.max(initial=1)), max_digits))
  digit = np.lib.stride_tricks.sliding_window_view(a, width)[ends - width] - np.uint8(_ZERO)
  inside = np.arange(width) >= (width - lengths)[:, None]
  ok &= ~np.any((digit > 9) & inside, axis=1)
  digit *= inside
  value = np.zeros(len(ends), np.int64)
  for j in range(width):
    value *= 10
    value += digit[:, j]
  ok &= value <= _MAX_INT32
  return value, ok


def _tail(a: np.ndarray, ends: np.ndarray, width: int) -> np.ndarray:
  """uint8[N, width]: the last `width` bytes before each line end."""
  return np.lib.stride_tricks.sliding_window_view(a, width)[ends - width]


def _check_no_nul(data: bytes, path: str, first_line: int = 1,
                  encoding: str = "ASCII") -> None:
  """Netflix files are ASCII (titles ISO-8859-1): a NUL byte means UTF-16 or binary."""
  nul = data.find(b"\x00")
  if nul >= 0:
    raise DataFormatError(path, first_line + data.count(b"\n", 0, nul), f"expected "
                          f"{encoding} text, got a NUL byte: UTF-16 text (save it as "
                          f"{encoding}) or a binary file")


@dataclasses.dataclass(frozen=True)
class _Piece:
  """Whole blocks from one file: `data` begins at line `first_line` of `path`.

  `movie` is an mv_ file's MovieID (the piece must be exactly that one block), else None.
  """

  path: str
  first_line: int
  data: bytes
  movie: int | None = None


class _Blocks:
  """Line bounds, `MovieID:` headers and each line's block, for a buffer of pieces."""

  def __init__(self, pieces: Sequence[_Piece]):
    datas = [b"\n" * _PAD]
    for p in pieces:
      d = p.data.replace(b"\r\n", b"\n") if b"\r" in p.data else p.data
      if not d:
        raise DataFormatError(p.path, None, "expected a `MovieID:` line, got an empty file")
      _check_no_nul(d, p.path, p.first_line)
      datas.append(d if d.endswith(b"\n") else d + b"\n")
    self.pieces = pieces
    self.a = a = np.frombuffer(b"".join(datas), np.uint8)
    self.ends = ends = np.flatnonzero(a == _NL)
    self.starts = starts = np.empty_like(ends)
    starts[0] = 0
    starts[1:] = ends[:-1] + 1
    self.piece_line = np.searchsorted(starts, np.cumsum([len(d) for d in datas[:-1]]))
    nonempty = ends > starts
    is_header = nonempty & (a[ends - 1] == _COLON)
    self.header = hdr = np.flatnonzero(is_header)
    movie, ok = _uint_before(a, ends[hdr] - 1, ends[hdr] - 1 - starts[hdr])
    if not ok.all():
      i = int(hdr[np.argmin(ok)])
      self.fail(i, f"expected a `MovieID:` line with an integer MovieID below 2**31, got "
                f"{self.text(i)!r}")
    self.header_movie = movie.astype(np.int32)
    starts_block = is_header[self.piece_line]
    if not starts_block.all():
      i = int(self.piece_line[np.argmin(starts_block)])
      self.fail(i, f"expected a `MovieID:` line starting each block, got {self.text(i)!r}")
    self.body = body = np.flatnonzero(nonempty & ~is_header)
    self.block = np.searchsorted(hdr, body) - 1  # block index of each body line
    self._check_mv_pieces()

  def _check_mv_pieces(self):
    first_hdr = np.searchsorted(self.header, self.piece_line)
    count = np.diff(np.append(first_hdr, len(self.header)))
    for p, piece in enumerate(self.pieces):
      if piece.movie is None:
        continue
      k = first_hdr[p]
      if count[p] != 1:
        i = int(self.header[k + 1])
        self.fail(i, f"expected one `MovieID:` line in an mv_ file, got a second one "
                  f"{self.text(i)!r}")
      if self.header_movie[k] != piece.movie:
        i = int(self.header[k])
        self.fail(i, f"expected `{piece.movie}:` (the number in the file name), got "
                  f"{self.text(i)!r}")

  def text(self, i: int) -> str:
    return self.a[self.starts[i]:self.ends[i]].tobytes().decode("latin-1")[:120]

  def where_all(self, lines: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(piece index, 1-based line in its file) of buffer lines."""
    p = np.searchsorted(self.piece_line, lines, side="right") - 1
    first = np.array([piece.first_line for piece in self.pieces], np.int64)
    return p, first[p] + lines - self.piece_line[p]

  def where(self, i: int) -> tuple[str, int]:
    p, line = self.where_all(np.array([i]))
    return self.pieces[int(p[0])].path, int(line[0])

  def fail(self, i: int, message: str):
    path, line = self.where(i)
    raise DataFormatError(path, line, message)

  def lines_per_block(self) -> np.ndarray:
    return np.bincount(self.block, minlength=len(self.header))


# ----------------------------------------------------------------------------------------
# Training set.


def _explain_rating_line(line: str) -> str:
  fields = line.split(",")
  if len(fields) != 3:
    return f"expected CustomerID,Rating,YYYY-MM-DD, got {line!r}"
  customer, rating, date = fields
  if not (customer.isascii() and customer.isdigit()):
    return f"expected an integer CustomerID, got {customer!r} in {line!r}"
  if len(customer) > 10 or int(customer) > _MAX_INT32:
    return f"expected a CustomerID below 2**31, got {customer}"
  if not (rating.isascii() and rating.isdigit()):
    return f"expected an integer rating 1-5, got {rating!r} in {line!r}"
  if rating not in ("1", "2", "3", "4", "5"):
    return f"expected a rating 1-5 (one digit), got {rating!r} in {line!r}"
  return _explain_date(date, line) or f"could not parse {line!r}"


def _explain_date(date: str, line: str) -> str | None:
  try:
    if _ISO_DATE.fullmatch(date):
      datetime.date.fromisoformat(date)
      return None
  except ValueError:
    pass
  return f"expected a date YYYY-MM-DD, got {date!r} in {line!r}"


def _first_repeat(block: np.ndarray, customer: np.ndarray, num_blocks: int) -> int:
  """Row of the first customer seen twice within one block, or -1.

  Per block, writes each row's position into a table at its customer and reads it
  back: a repeated customer holds its last position, so its first row disagrees.
  Linear time; ids beyond the table fall back to sorting (block, customer) keys.
  """
  if not len(customer):
    return -1
  top = int(customer.max())
  if top >= 1 << 26:
    key = (block.astype(np.int64) << 32) | customer
    sorted_key = np.sort(key)
    same = np.flatnonzero(sorted_key[1:] == sorted_key[:-1])
    return -1 if not len(same) else int(np.flatnonzero(key == sorted_key[same[0]])[1])
  position = np.empty(top + 1, np.int64)
  bounds = np.searchsorted(block, np.arange(num_blocks + 1)).tolist()
  rows = np.arange(max(np.diff(bounds).max(initial=0), 1))
  for lo, hi in zip(bounds[:-1], bounds[1:]):
    c = customer[lo:hi]
    position[c] = rows[:hi - lo]
    moved = position[c] != rows[:hi - lo]
    if moved.any():
      first = int(np.argmax(moved))
      return lo + int(np.flatnonzero(c == c[first])[1])
  return -1


def _parse_training_batch(pieces: Sequence[_Piece]) -> dict:
  """Parses whole blocks into movie/customer/rating/day arrays plus block facts."""
  blocks = _Blocks(pieces)
  a, body = blocks.a, blocks.body
  s, e = blocks.starts[body], blocks.ends[body]
  tail = _tail(a, e, 13)  # ,R,YYYY-MM-DD
  rating = tail[:, 1].astype(np.int8) - _ZERO
  ok = (tail[:, 0] == _COMMA) & (tail[:, 2] == _COMMA) & (rating >= 1) & (rating <= 5)
  day, date_ok = _dates(tail[:, 3:])
  ok &= date_ok
  customer, cust_ok = _uint_before(a, e - 13, e - 13 - s)
  ok &= cust_ok
  if not ok.all():
    i = int(body[np.argmin(ok)])
    blocks.fail(i, _explain_rating_line(blocks.text(i)))
  customer = customer.astype(np.int32)
  block = blocks.block
  again = _first_repeat(block, customer, len(blocks.header))
  if again >= 0:
    first = int(np.flatnonzero((block == block[again]) & (customer == customer[again]))[0])
    _, first_line = blocks.where(int(body[first]))
    blocks.fail(int(body[again]), f"expected each CustomerID once per movie, got "
                f"customer {customer[again]} of movie {blocks.header_movie[block[again]]} "
                f"again (first at line {first_line})")
  piece, line = blocks.where_all(blocks.header)
  paths = [p.path for p in pieces]
  return {"movie": blocks.header_movie[block], "customer": customer, "rating": rating,
          "day": day, "block_movie": blocks.header_movie,
          "block_size": blocks.lines_per_block(),
          "block_where": [(paths[p], n) for p, n in zip(piece.tolist(), line.tolist())]}


def _parse_batch_safely(pieces: Sequence[_Piece]) -> dict:
  """`_parse_training_batch` for worker processes: errors come back as data.

  (DataFormatError takes three arguments, so it does not survive pickling as raised.)
  """
  try:
    return _parse_training_batch(pieces)
  except DataFormatError as e:
    return {"error": (e.path, e.line, e.reason)}


def _natural_key(name: str):
  return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", name)]


def _cut_blocks(path: str, first_line: int, data: bytes) -> tuple[_Piece | None, bytes]:
  """Splits `data` before its last complete `MovieID:` line: (whole blocks, the rest)."""
  end = len(data)
  while True:
    colon = max(data.rfind(b":\n", 0, end), data.rfind(b":\r\n", 0, end))
    if colon < 0:
      return None, data
    start = data.rfind(b"\n", 0, colon) + 1
    if start > 0:
      return _Piece(path, first_line, data[:start]), data[start:]
    end = colon


def _combined_pieces(path: str, read: Callable[[int], bytes],
                     chunk_bytes: int) -> Iterator[_Piece]:
  """Pieces of whole blocks, about `chunk_bytes` each, from a stream of combined data."""
  rest, line = b"", 1
  while True:
    data = read(chunk_bytes)
    buf = rest + data if rest else data
    if not data:
      if buf:
        yield _Piece(path, line, buf)
      return
    piece, rest = _cut_blocks(path, line, buf)
    if piece is not None:
      yield piece
      line += piece.data.count(b"\n")


def _mv_number(name: str) -> int | None:
  match = MV_FILE.fullmatch(os.path.basename(name))
  return int(match[1]) if match else None


def _tar_pieces(path: str, chunk_bytes: int) -> Iterator[_Piece]:
  found, current = 0, None
  raw = errors.open_file(path)
  try:
    with raw, tarfile.open(fileobj=raw, mode="r|*") as tar:
      for member in tar:
        current = member.name
        base = os.path.basename(member.name)
        movie = _mv_number(base)
        if not member.isfile() or movie is None and not COMBINED_FILE.fullmatch(base):
          continue
        found += 1
        name, stream = f"{path}:{member.name}", tar.extractfile(member)
        if movie is not None:
          yield _Piece(name, 1, stream.read(), movie)
        else:
          yield from _combined_pieces(name, stream.read, chunk_bytes)
      # A tar cut at a member boundary ends without its zero end-of-archive block, which
      # tarfile takes for a normal end; its stream then stops short of that block.
      if tar.fileobj.tell() < tar.offset + tarfile.BLOCKSIZE:
        raise DataFormatError(path, None, f"expected a complete tar archive, got one that "
                              f"ends after {current} without its end-of-archive block "
                              "(truncated)")
  except (tarfile.TarError, EOFError, zlib.error, OSError) as e:
    after = f" in or after member {current}" if current else ""
    raise DataFormatError(path, None, f"expected a complete tar archive, got a truncated "
                          f"or corrupt one ({e}{after})") from None
  if not found:
    raise DataFormatError(path, None, "expected mv_NNNNNNN.txt or combined_data_N.txt "
                          "files in the tar, got none")


def _file_pieces(paths: Sequence[str], chunk_bytes: int) -> Iterator[_Piece]:
  for path in paths:
    movie = _mv_number(path)
    if movie is not None:
      yield _Piece(path, 1, errors.read_file(path), movie)
    else:
      with errors.open_file(path) as f:
        yield from _combined_pieces(
            path, lambda size, f=f, path=path: errors.read_from(f, path, size), chunk_bytes)


def _is_tar(path: str) -> bool:
  try:
    return tarfile.is_tarfile(path)
  except (OSError, tarfile.TarError, EOFError):
    return False


def find_training_files(path) -> tuple[str, list[str]]:
  """What `path` holds: ("tar", [path]) or ("files", [mv_ or combined_data files]).

  A folder may hold mv_*.txt files, combined_data_*.txt files, a `training_set/`
  folder or a `training_set.tar`; a file may be a tar (plain or compressed), one
  mv_ file or one combined file.
  """
  path = os.fspath(path)
  if os.path.isdir(path):
    names = sorted(errors.list_dir(path), key=_natural_key)
    mv = [n for n in names if MV_FILE.fullmatch(n)]
    combined = [n for n in names if COMBINED_FILE.fullmatch(n)]
    if mv or combined:
      return "files", [os.path.join(path, n) for n in (mv or combined)]
    for sub in ("training_set", "training_set.tar"):
      if os.path.lexists(os.path.join(path, sub)):
        return find_training_files(os.path.join(path, sub))
    raise DataNotFoundError(f"{path}: no Netflix training data found; expected "
                            "mv_NNNNNNN.txt files, combined_data_N.txt files, a "
                            "training_set/ folder or training_set.tar")
  errors.check_file(path, "file or folder")
  with errors.open_file(path) as f:
    head = errors.read_from(f, path, 6)
  if _is_tar(path):
    return "tar", [path]
  if (re.search(r"\.(tar|tgz|tbz2?|txz)(\.(gz|bz2|xz))?$", path.lower()) or
      head.startswith(_COMPRESSED_MAGIC)):
    raise DataFormatError(path, None, "expected a tar archive (or mv_/combined_data text "
                          "files), got a truncated or unreadable archive: its first "
                          "member header cannot be read")
  return "files", [path]


def training_pieces(path, chunk_bytes: int = 1 << 24) -> tuple[Iterator[_Piece], int]:
  """The input's pieces (whole blocks) and its size in bytes (bounds the rating count)."""
  kind, paths = find_training_files(path)
  size = sum(errors.check_file(p).st_size for p in paths)
  if kind == "tar":
    return _tar_pieces(paths[0], chunk_bytes), size
  return _file_pieces(paths, chunk_bytes), size


# ----------------------------------------------------------------------------------------
# Probe, qualifying and prediction files.


def _read_blocks(path, kind: str) -> MovieBlocks:
  path = os.fspath(path)
  blocks = _Blocks([_Piece(path, 1, errors.read_file(path))])
  a, body = blocks.a, blocks.body
  s, e = blocks.starts[body], blocks.ends[body]
  customer = day = value = None
  if kind == "probe":
    customer, ok = _uint_before(a, e, e - s)
    why = "expected a CustomerID line (an integer below 2**31)"
  elif kind == "qualifying":
    tail = _tail(a, e, 11)  # ,YYYY-MM-DD
    day, ok = _dates(tail[:, 1:])
    ok &= tail[:, 0] == _COMMA
    customer, cust_ok = _uint_before(a, e - 11, e - 11 - s)
    ok &= cust_ok
    why = "expected CustomerID,YYYY-MM-DD"
  else:
    value, ok = _floats(a, s, e)
    why = "expected one finite predicted rating per line"
  if not ok.all():
    i = int(body[np.argmin(ok)])
    blocks.fail(i, f"{why}, got {blocks.text(i)!r}")
  starts = np.searchsorted(body, blocks.header).astype(np.int64)
  return MovieBlocks(
      movie=blocks.header_movie[blocks.block],
      customer=None if customer is None else customer.astype(np.int32),
      day=day, value=value, block_movie=blocks.header_movie, block_start=starts)


def _floats(a: np.ndarray, s: np.ndarray, e: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  values = np.zeros(len(s), np.float64)
  ok = np.zeros(len(s), bool)
  raw = a.tobytes()
  for k, (i, j) in enumerate(zip(s.tolist(), e.tolist())):
    try:
      values[k] = float(raw[i:j])
      ok[k] = np.isfinite(values[k])
    except ValueError:
      pass
  return values, ok


def read_probe(path) -> MovieBlocks:
  """probe.txt: `MovieID:` blocks of CustomerID lines (`customer` set)."""
  return _read_blocks(path, "probe")


def read_qualifying(path) -> MovieBlocks:
  """qualifying.txt: `MovieID:` blocks of `CustomerID,YYYY-MM-DD` lines (customer, day)."""
  return _read_blocks(path, "qualifying")


def read_predictions(path) -> MovieBlocks:
  """A prediction file: `MovieID:` blocks of one predicted rating per line (`value`)."""
  return _read_blocks(path, "predictions")


def write_predictions(path, queries: MovieBlocks, predictions, *, decimals: int = 3,
                      clip: tuple[float, float] | None = (1.0, 5.0)) -> None:
  """Writes a prediction file for `queries` (from `read_qualifying` or `read_probe`).

  Keeps every `MovieID:` line and puts one rating per query line in its place, in the
  same order. `predictions` is an array aligned with the queries, or a callable
  `predict(movie int32[N], customer int32[N]) -> float[N]`. Ratings are clipped to
  `clip` (the scale the scores are computed on) and written with `decimals` decimals.
  The file is written to a temporary name and renamed, so it is never left half done.
  """
  if callable(predictions):
    predictions = predictions(queries.movie, queries.customer)
  values = np.asarray(predictions, np.float64).ravel()
  if len(values) != len(queries):
    raise ValueError(f"expected {len(queries)} predictions, got {len(values)}")
  if not np.all(np.isfinite(values)):
    raise ValueError(f"predictions must be finite, got {np.sum(~np.isfinite(values))} "
                     "NaN or infinite values")
  if clip is not None:
    values = np.clip(values, *clip)
  text = [f"{v:.{decimals}f}" for v in values.tolist()]
  out = []
  bounds = np.append(queries.block_start, len(values)).tolist()
  for b, movie in enumerate(queries.block_movie.tolist()):
    out.append(f"{movie}:")
    out.extend(text[bounds[b]:bounds[b + 1]])
  tmp = f"{os.fspath(path)}.tmp-{os.getpid()}"
  with open(tmp, "w", encoding="ascii", newline="\n") as f:
    f.write("\n".join(out) + "\n")
  os.replace(tmp, path)


def read_movie_titles(path) -> MovieTitles:
  """movie_titles.txt (ISO-8859-1): `MovieID,YearOfRelease,Title`, split on two commas.

  YearOfRelease may be NULL (stored as 0); titles keep any further commas.
  """
  path = os.fspath(path)
  data = errors.read_file(path)
  _check_no_nul(data, path, encoding="ISO-8859-1")
  text = data.decode("iso-8859-1")  # never fails: every byte is a character
  movies, years, titles = [], [], []
  for no, line in enumerate(text.split("\n"), start=1):
    line = line.rstrip("\r")
    if not line:
      continue
    fields = line.split(",", 2)
    if len(fields) != 3:
      raise DataFormatError(path, no, f"expected MovieID,YearOfRelease,Title, got "
                            f"{line[:120]!r}")
    movie, year, title = fields
    if (not (movie.isascii() and movie.isdigit()) or len(movie) > 10 or
        int(movie) > _MAX_INT32):
      raise DataFormatError(path, no, f"expected an integer MovieID, got {movie[:40]!r}")
    if year != "NULL" and not (year.isascii() and year.isdigit() and len(year) == 4):
      raise DataFormatError(path, no, f"expected a 4-digit YearOfRelease or NULL, got "
                            f"{year[:40]!r}")
    movies.append(int(movie))
    years.append(0 if year == "NULL" else int(year))
    titles.append(title)
  if not movies:
    raise DataFormatError(path, None, "expected movie titles, got an empty file")
  return MovieTitles(np.array(movies, np.int32), np.array(years, np.int32), tuple(titles))


# ----------------------------------------------------------------------------------------
# Reading a whole training set.


def _batches(pieces: Iterator[_Piece], batch_bytes: int) -> Iterator[list[_Piece]]:
  batch, size = [], 0
  for piece in pieces:
    batch.append(piece)
    size += len(piece.data)
    if size >= batch_bytes:
      yield batch
      batch, size = [], 0
  if batch:
    yield batch


def _parsed_batches(batches: Iterator[list[_Piece]], workers: int) -> Iterator[dict]:
  """Parsed batches in input order; with workers > 1, parsed in worker processes.

  At most `workers + 1` batches are in flight, so memory stays bounded however
  fast the input is read.
  """
  if workers <= 1:
    yield from map(_parse_training_batch, batches)
    return
  import collections  # pylint: disable=g-import-not-at-top
  import concurrent.futures  # pylint: disable=g-import-not-at-top
  import multiprocessing  # pylint: disable=g-import-not-at-top
  # spawn, not fork: the caller may hold threads (JAX) that fork would copy mid-flight.
  pool = concurrent.futures.ProcessPoolExecutor(
      workers, mp_context=multiprocessing.get_context("spawn"))
  try:
    pending = collections.deque()
    for batch in batches:
      pending.append(pool.submit(_parse_batch_safely, batch))
      if len(pending) > workers:
        yield _unwrap(pending.popleft().result())
    while pending:
      yield _unwrap(pending.popleft().result())
  finally:
    pool.shutdown(wait=True, cancel_futures=True)


def _unwrap(result: dict) -> dict:
  if "error" in result:
    raise DataFormatError(*result["error"])
  return result


class _Columns:
  """Preallocated output columns that grow if the first guess was too small.

  np.empty only reserves address space: pages count towards memory when written.
  """

  _DTYPES = {"movie": np.int32, "customer": np.int32, "rating": np.int8, "day": np.int32}

  def __init__(self, capacity: int):
    self.n = 0
    self.cols = {k: np.empty(max(capacity, 1), t) for k, t in self._DTYPES.items()}

  def append(self, parsed: dict):
    m = len(parsed["rating"])
    if self.n + m > len(self.cols["rating"]):
      grow = max(self.n + m, 2 * len(self.cols["rating"]))
      for k, col in self.cols.items():
        bigger = np.empty(grow, col.dtype)
        bigger[:self.n] = col[:self.n]
        self.cols[k] = bigger
    for k, col in self.cols.items():
      col[self.n:self.n + m] = parsed[k]
    self.n += m

  def final(self) -> dict:
    return {k: col[:self.n] for k, col in self.cols.items()}


def read_training_set(path, *, workers: int = 1, batch_bytes: int = 1 << 25,
                      log: Callable[[str], None] | None = None) -> TrainingRatings:
  """Reads a Netflix training set: an mv_ folder, training_set.tar, or combined files.

  Args:
    path: a folder (mv_NNNNNNN.txt files, combined_data_N.txt files, or holding
      training_set/ or training_set.tar), a tar (read as a stream, never unpacked),
      one combined_data file or one mv_ file.
    workers: processes that parse; 1 parses in this process.
    batch_bytes: input bytes parsed at once (whole blocks; combined files are cut
      into pieces of about this size).
    log: called with a progress line now and then.

  Returns:
    The ratings sorted by MovieID (stable: a block's lines keep their file order), so
    every input form of the same data gives the same arrays.

  Raises:
    DataNotFoundError: nothing Netflix-shaped at `path`.
    DataFormatError: (file, line) of the first bad line, a MovieID in two blocks, a
      customer twice in one movie, or a truncated archive.
  """
  pieces, size = training_pieces(path, batch_bytes)
  columns = _Columns(size // 15 + 1)  # every rating line is at least 15 bytes
  block_movie, block_size, block_where = [], [], []
  next_log = 2000
  for parsed in _parsed_batches(_batches(pieces, batch_bytes), workers):
    columns.append(parsed)
    block_movie.append(parsed["block_movie"])
    block_size.append(parsed["block_size"])
    block_where.extend(parsed["block_where"])
    if log is not None and len(block_where) >= next_log:
      log(f"read {len(block_where):,} movies, {columns.n:,} ratings")
      next_log = len(block_where) + 2000
  if not block_where:
    raise DataFormatError(os.fspath(path), None, "expected Netflix rating blocks, got none")
  cols = columns.final()
  block_movie = np.concatenate(block_movie)
  block_size = np.concatenate(block_size)
  _check_unique_movies(block_movie, block_where)
  if np.any(np.diff(block_movie) < 0):
    order = np.argsort(block_movie, kind="stable")
    index = _block_permutation(block_size, order)
    cols = {k: col[index] for k, col in cols.items()}
  return TrainingRatings(source=os.fspath(path), **cols)


def _check_unique_movies(block_movie: np.ndarray, where: list[tuple[str, int]]):
  order = np.argsort(block_movie, kind="stable")
  same = np.flatnonzero(block_movie[order][1:] == block_movie[order][:-1])
  if len(same):
    first, second = order[same[0]], order[same[0] + 1]
    path, line = where[second]
    raise DataFormatError(path, line, f"expected each MovieID in one block, got movie "
                          f"{block_movie[second]} again (first at {where[first][0]}:"
                          f"{where[first][1]})")


def _block_permutation(size: np.ndarray, order: np.ndarray) -> np.ndarray:
  """Row index that puts blocks (consecutive runs of `size` rows) in `order`."""
  start = np.concatenate(([0], np.cumsum(size)[:-1]))
  sizes = size[order]
  first = np.repeat(start[order] - np.concatenate(([0], np.cumsum(sizes)[:-1])), sizes)
  return first + np.arange(int(sizes.sum()))
