"""Delimited rating files: CSV, TSV, whitespace or `::`, plain, gzipped or zipped.

The one text parser behind every reader. Files are read whole into memory (zip members
too: nothing is unpacked to disk), the layout is sniffed (delimiter, header, field
count), and pandas' C parser does the parsing. Pandas only *detects* trouble: when a
line count, a field count, a dtype or a finite check fails, the file is rescanned in
Python and the first bad line is reported as `DataFormatError(path, line, ...)`, with
1-based line numbers that count the header. No pandas error ever reaches the caller.
Integer ids are exact: a column pandas had to read through a float64 is read again
as text and checked by `exact_integer`, so no two ids written differently become one.
Files must be ASCII or UTF-8 text with LF or CRLF line ends: UTF-16, NUL bytes,
compressed or binary contents and lone-CR line ends are refused up front with their
own message. Files are opened through `errors.open_file` (regular files only).

Readers return `RawRatings` (original ids, the line each rating came from); its
`to_ratings()` numbers the ids with `types.index_ratings`.
"""

from __future__ import annotations

import collections
import dataclasses
import decimal
import gzip
import io
import math
import os
import re
import warnings
import zipfile
import zlib
from typing import Sequence

import numpy as np
import pandas as pd
from absl import logging

from autorec_jax.data import errors
from autorec_jax.data.errors import DataFormatError
from autorec_jax.data.types import Ratings, index_ratings

DUPLICATE_POLICIES = ("error", "keep_last", "mean")
HEADER_CHOICES = ("auto", "yes", "no")
WHITESPACE = "whitespace"  # runs of spaces and tabs separate fields
# Tried in this order on the first data line; whitespace is the fallback.
_SNIFF_ORDER = ("::", "\t", ",", ";", "|")
_DELIMITER_ALIASES = {"tab": "\t", "\\t": "\t", "space": WHITESPACE, " ": WHITESPACE,
                      "comma": ",", "whitespace": WHITESPACE}
_CHUNK_BYTES = 1 << 25  # line scanning works on 32 MiB slices to bound memory
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1


@dataclasses.dataclass(frozen=True, eq=False)
class RawRatings:
  """Parsed ratings with the dataset's original ids, before indexing.

  Attributes:
    user: [N] original user ids (int64, or str objects with `string_ids`).
    item: [N] original item ids.
    rating: float64[N] ratings as written in the file.
    timestamp: int64[N] seconds since the epoch, or None.
    line: int32[N] 1-based line (for matrices: row) of each rating in its file.
    file: int16[N] index into `paths` of the file each rating came from.
    paths: the files, as shown in error messages ("a.zip:member" for zip members).
  """

  user: np.ndarray
  item: np.ndarray
  rating: np.ndarray
  timestamp: np.ndarray | None
  line: np.ndarray
  file: np.ndarray
  paths: tuple[str, ...]

  @classmethod
  def single(cls, path: str, user, item, rating, timestamp, line) -> "RawRatings":
    """Ratings that all come from one file."""
    return cls(user=user, item=item, rating=np.asarray(rating, np.float64),
               timestamp=timestamp, line=np.asarray(line, np.int32),
               file=np.zeros(len(rating), np.int16), paths=(str(path),))

  def __len__(self) -> int:
    return len(self.rating)

  def where(self, i: int) -> tuple[str, int]:
    """(path, line) of rating `i`, for error messages."""
    return self.paths[self.file[i]], int(self.line[i])

  def subset(self, index: np.ndarray) -> "RawRatings":
    ts = None if self.timestamp is None else self.timestamp[index]
    return dataclasses.replace(self, user=self.user[index], item=self.item[index],
                               rating=self.rating[index], timestamp=ts,
                               line=self.line[index], file=self.file[index])

  def to_ratings(self) -> Ratings:
    """Indexed `Ratings` (users and items numbered in sorted id order)."""
    return index_ratings(self.user, self.item, self.rating, self.timestamp,
                         source=", ".join(self.paths))


def concat(parts: Sequence[RawRatings]) -> RawRatings:
  """One `RawRatings` holding `parts` in order; timestamps kept only if all have them."""
  if len(parts) == 1:
    return parts[0]
  paths, files = [], []
  for part in parts:
    files.append(part.file + np.int16(len(paths)))
    paths.extend(part.paths)
  with_ts = all(p.timestamp is not None for p in parts)
  ids_are_str = [p.user.dtype == object for p in parts]
  if any(ids_are_str) and not all(ids_are_str):
    raise DataFormatError(", ".join(paths), None,
                          "expected all files to use the same id type, got string "
                          "ids in some and integer ids in others")
  return RawRatings(
      user=np.concatenate([p.user for p in parts]),
      item=np.concatenate([p.item for p in parts]),
      rating=np.concatenate([p.rating for p in parts]),
      timestamp=np.concatenate([p.timestamp for p in parts]) if with_ts else None,
      line=np.concatenate([p.line for p in parts]),
      file=np.concatenate(files).astype(np.int16), paths=tuple(paths))


def resolve_duplicates(raw: RawRatings, policy: str) -> RawRatings:
  """Applies the duplicate (user, item) policy.

  "error" raises DataFormatError at the second occurrence of the first repeated pair,
  naming the flags that merge repeats instead; "keep_last" keeps each pair's last
  rating; "mean" averages a pair's ratings (keeping the last occurrence's timestamp and
  line). A merge logs one warning with the number of pairs merged.
  """
  if policy not in DUPLICATE_POLICIES:
    raise ValueError(f"duplicates must be one of {DUPLICATE_POLICIES}, got {policy!r}")
  frame = pd.DataFrame({"u": raw.user, "i": raw.item})
  dup = frame.duplicated(keep="first").to_numpy()
  if not dup.any():
    return raw
  if policy == "error":
    k = int(np.flatnonzero(dup)[0])
    first = int(np.flatnonzero((raw.user == raw.user[k]) & (raw.item == raw.item[k]))[0])
    path, line = raw.where(k)
    first_path, first_line = raw.where(first)
    at = f"line {first_line}" if first_path == path else f"{first_path}:{first_line}"
    raise DataFormatError(
        path, line, f"expected each (user, item) pair once, got user {raw.user[k]} "
        f"item {raw.item[k]} again (first at {at}); to merge repeats pass "
        "--config.data.duplicates=keep_last (the last rating) or "
        "--config.data.duplicates=mean (their mean)")
  last_of_pair = ~frame.duplicated(keep="last").to_numpy()
  num_pairs = int(np.count_nonzero(last_of_pair & frame.duplicated(keep=False).to_numpy()))
  num_dropped = int(np.count_nonzero(dup))
  how = ("kept the last rating of each" if policy == "keep_last" else
         "replaced each by the mean of its ratings")
  logging.warning("%s: %d (user, item) pairs occur more than once; data.duplicates=%s "
                  "%s (%d ratings merged away)", ", ".join(raw.paths), num_pairs, policy,
                  how, num_dropped)
  if policy == "keep_last":
    return raw.subset(last_of_pair)
  group = frame.groupby(["u", "i"], sort=False).ngroup().to_numpy()
  num_groups = int(group.max()) + 1
  last = np.empty(num_groups, np.int64)
  last[group] = np.arange(len(group))  # repeated indices: the last write wins
  mean = np.bincount(group, weights=raw.rating, minlength=num_groups) / np.bincount(
      group, minlength=num_groups)
  order = np.argsort(last, kind="stable")
  merged = raw.subset(last[order])
  return dataclasses.replace(merged, rating=mean[order])


def read_bytes(path, member: str | None = None) -> tuple[bytes, str]:
  """The whole decompressed contents of a plain, .gz or .zip file, and its display name.

  Gzip and zip are recognised by their magic bytes. A zip needs `member` unless it holds
  exactly one file. The path must be a regular file (see `errors.open_file`: a folder, a
  named pipe, a link loop or an unreadable file is refused with its cause). Truncated
  or corrupt archives raise DataFormatError naming the file.
  """
  path = os.fspath(path)
  with errors.open_file(path) as f:
    head = errors.read_from(f, path, 4)
    if head.startswith(b"PK\x03\x04") or head.startswith(b"PK\x05\x06"):
      f.seek(0)
      return _read_zip_member(path, member, f)
    if member is not None:
      raise DataFormatError(path, None, f"expected a zip archive holding {member}, got a "
                            "file that is not a zip")
    f.seek(0)
    data = errors.read_from(f, path)  # in one piece: `head + rest` would copy the whole file
  if head.startswith(b"\x1f\x8b"):
    try:
      data = gzip.decompress(data)
    except (EOFError, OSError, zlib.error) as e:
      raise DataFormatError(path, None, f"expected a complete gzip file, got a truncated "
                            f"or corrupt one ({e})") from None
  return data, path


def _zip_names(zf: zipfile.ZipFile) -> list[str]:
  return [n for n in zf.namelist() if not n.endswith("/")]


def zip_members(path) -> list[str]:
  """Names of the files (not folders) in a zip archive."""
  path = os.fspath(path)
  with errors.open_file(path) as f:
    try:
      with zipfile.ZipFile(f) as zf:
        return _zip_names(zf)
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as e:
      raise DataFormatError(path, None, f"expected a complete zip archive, got a "
                            f"truncated or corrupt one ({e})") from None


def shown_names(names: Sequence[str], limit: int = 8) -> str:
  """`names` for a message: the first `limit`, then how many more."""
  more = f" and {len(names) - limit} more" if len(names) > limit else ""
  return ", ".join(names[:limit]) + more


def _read_zip_member(path: str, member: str | None, f) -> tuple[bytes, str]:
  """The (gunzipped) contents of one member of the zip open as `f`, and its name."""
  try:
    zf = zipfile.ZipFile(f)
  except (zipfile.BadZipFile, OSError, EOFError, ValueError) as e:
    raise DataFormatError(path, None, f"expected a complete zip archive, got a truncated "
                          f"or corrupt one ({e})") from None
  with zf:
    names = _zip_names(zf)
    if not names:
      raise DataFormatError(path, None, "expected a ratings file in the zip, got an "
                            "archive that holds no files")
    if member is None:
      if len(names) != 1:
        raise DataFormatError(path, None, f"expected one file in the zip or a member "
                              f"name, got {len(names)} files: {shown_names(names)}; unzip "
                              "it and pass the ratings file itself")
      member = names[0]
    if member not in names:
      raise DataFormatError(path, None, f"expected a member {member!r} in the zip, got "
                            f"{shown_names(names)}")
    name = f"{path}:{member}"
    try:
      data = zf.read(member)
    except (NotImplementedError, RuntimeError) as e:  # encrypted, unknown compression
      raise DataFormatError(name, None, f"expected a zip member stored or deflated without "
                            f"a password, got one that cannot be unpacked ({e})") from None
    except (zipfile.BadZipFile, OSError, EOFError, zlib.error, ValueError) as e:
      raise DataFormatError(name, None, f"expected a complete zip member, got a truncated "
                            f"or corrupt one ({e})") from None
  if member.endswith(".gz") or data.startswith(b"\x1f\x8b"):
    try:
      data = gzip.decompress(data)
    except (EOFError, OSError, zlib.error) as e:
      raise DataFormatError(name, None, f"expected a complete gzip member, got a "
                            f"truncated or corrupt one ({e})") from None
  return data, name


@dataclasses.dataclass(frozen=True)
class Layout:
  """What sniffing found. `header` is the header's fields, or None when there is none."""

  delimiter: str
  header: tuple[str, ...] | None
  num_fields: int

  @property
  def header_lines(self) -> int:
    return 0 if self.header is None else 1


def normalize_delimiter(delimiter: str | None) -> str | None:
  """Maps "tab", "\\t", "space", " " ... to the delimiters `sniff` uses."""
  if delimiter is None:
    return None
  delimiter = _DELIMITER_ALIASES.get(delimiter, delimiter)
  if delimiter not in (WHITESPACE, "::") and (len(delimiter) != 1 or
                                              not delimiter.isascii()):
    raise ValueError(f"delimiter must be one ASCII character, '::' or 'whitespace', got "
                     f"{delimiter!r}")
  if len(delimiter) == 1 and (delimiter.isalnum() or delimiter in _NUMBER_CHARS or
                              delimiter.isspace() and delimiter != "\t"):
    # Part of a number or an id: the fields would be cut inside their values.
    raise ValueError(f"delimiter must not be a character of numbers or ids (a letter, "
                     f"digit, '.', '-', '+', '_' or '\"'), got {delimiter!r}")
  return delimiter


_NUMBER_CHARS = ".-+_\""


def split_fields(line: str, delimiter: str) -> list[str]:
  return line.split() if delimiter == WHITESPACE else line.split(delimiter)


_UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")
_MAT_HINT = ("(name it *.mat to read its Jester matrix X; a rating matrix with split "
             "masks is read with --config.data.name=monti)")
# Magic numbers of binary files a ratings path may point at by mistake.
_BINARY_MAGIC = ((b"\x1f\x8b", "gzip-compressed data (a file compressed twice?)"),
                 (b"PK\x03\x04", "a zip archive (an .xlsx workbook, or a zip inside a "
                                 "zip?)"),
                 (b"BZh", "bzip2-compressed data; decompress it (bunzip2) first"),
                 (b"\xfd7zXZ\x00", "xz-compressed data; decompress it (unxz) first"),
                 (b"7z\xbc\xaf\x27\x1c", "a 7-Zip archive; unpack it first"),
                 (b"(\xb5/\xfd", "zstd-compressed data; decompress it (unzstd) first"),
                 (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "an Excel .xls workbook or other "
                                                        "OLE file; save the sheet as CSV"),
                 (b"PAR1", "a Parquet file; export it as CSV"),
                 (b"\x93NUMPY", "a NumPy .npy array"),
                 (b"MATLAB 5.0 MAT-file", f"a MATLAB .mat file {_MAT_HINT}"),
                 (b"MATLAB 7.3 MAT-file", f"a MATLAB v7.3 .mat file {_MAT_HINT}"),
                 (b"\x89HDF", f"an HDF5 file (MATLAB v7.3?) {_MAT_HINT}"))


def _check_text(data: bytes, path: str) -> None:
  """Raises DataFormatError when a file is not ASCII/UTF-8 text lines.

  Catches what would otherwise surface as a puzzling parse error further on: UTF-16
  or UTF-32 text (a byte order mark, or NUL bytes between the characters), compressed
  or binary files (by their magic number, or a NUL byte anywhere in the file), and
  lines separated by a lone carriage return (classic Mac OS).
  """
  head = data[:1 << 16]
  if head.startswith(_UTF16_BOMS) or head.startswith(b"\x00\x00\xfe\xff"):
    raise DataFormatError(path, 1, "expected ASCII or UTF-8 text, got UTF-16 or UTF-32 "
                          "(the file starts with its byte order mark); save it as UTF-8")
  for magic, what in _BINARY_MAGIC:
    if head.startswith(magic):
      raise DataFormatError(path, None, f"expected ratings as text (plain, .gz or .zip), "
                            f"got {what}")
  nul = data.find(b"\x00")
  if nul >= 0:
    raise DataFormatError(path, data.count(b"\n", 0, nul) + 1, "expected ASCII or UTF-8 "
                          "text, got a NUL byte: UTF-16 text (save it as UTF-8) or a "
                          "binary file")
  if b"\n" not in head and b"\r" in head.rstrip(b"\r"):
    raise DataFormatError(path, 1, "expected lines ending in \\n or \\r\\n, got lines "
                          "separated by \\r alone (classic Mac OS); convert the line "
                          "endings")


def _is_number(s: str) -> bool:
  try:
    float(s.strip().strip('"'))
  except ValueError:
    return False
  return True


def sniff(data: bytes, path: str, *, delimiter: str | None = None, header: str = "auto",
          text_fields: Sequence[int] = ()) -> Layout:
  """Finds the delimiter, whether line 1 is a header, and the number of fields.

  Line 1 is a header when none of its fields is a number and some are not empty
  (fields listed in `text_fields`, string id columns, are not looked at), so a first
  data line with a bad or missing value is reported as such, not taken for a header.
  Empty and header-only files raise DataFormatError.
  """
  if header not in HEADER_CHOICES:
    raise ValueError(f"header must be one of {HEADER_CHOICES}, got {header!r}")
  delimiter = normalize_delimiter(delimiter)
  if not data.strip():
    raise DataFormatError(path, None, "expected ratings, got an empty file")
  _check_text(data, path)
  head_bytes = data[:1 << 16]
  lines = [s.rstrip("\r") for s in head_bytes.decode("utf-8", "replace").split("\n")]
  if len(data) > len(head_bytes):
    lines.pop()  # possibly cut in the middle
  nonblank = [(i, s) for i, s in enumerate(lines) if s.strip()]
  if not nonblank:
    raise DataFormatError(path, 1, f"expected lines of text, got no line break in the "
                          f"first {len(head_bytes)} bytes: is it a ratings file?")
  first_no, first = nonblank[0]
  if delimiter is None:
    delimiter = next((d for d in _SNIFF_ORDER if d in first), None)
    if delimiter is None:
      if len(first.split()) < 2:
        raise DataFormatError(path, first_no + 1, f"expected fields separated by '::', "
                              f"tab, comma or spaces, got {first[:80]!r}")
      delimiter = WHITESPACE
  if len(split_fields(first, delimiter)) < 2:
    shown = "spaces" if delimiter == WHITESPACE else repr(delimiter)
    raise DataFormatError(path, first_no + 1, f"expected fields separated by {shown}, "
                          f"got {first[:80]!r}")
  has_header = header == "yes"
  fields = [f for k, f in enumerate(split_fields(first, delimiter)) if k not in text_fields]
  if header == "auto" and first_no == 0:
    has_header = (not any(_is_number(f) for f in fields) and
                  any(f.strip().strip('"') for f in fields))
  if has_header and first_no == 0 and fields and all(_is_number(f) for f in fields):
    # Only numbers: a rating, which the header setting would silently drop.
    raise DataFormatError(path, 1, f"expected a header line, got a line of numbers "
                          f"{first[:80]!r}: the file has no header (with data.name=csv: "
                          "data.csv_header=no or auto)")
  head = None
  if has_header:
    head = tuple(f.strip().strip('"') for f in split_fields(lines[0], delimiter))
    if len(nonblank) == 1 and len(data) == len(head_bytes):
      raise DataFormatError(path, None, f"expected ratings after the header, got only "
                            f"the header {lines[0][:80]!r}")
    num_fields = len(head)
  else:
    num_fields = _usual_field_count([s for _, s in nonblank[:1000]], delimiter)
  return Layout(delimiter, head, num_fields)


def _usual_field_count(lines: list[str], delimiter: str) -> int:
  """The most common field count of `lines` (the first line's on a tie), so that a bad
  first line is reported as such rather than every line after it."""
  counts = collections.Counter(len(split_fields(s, delimiter)) for s in lines)
  first = len(split_fields(lines[0], delimiter))
  most = max(counts.values())
  return first if counts[first] == most else counts.most_common(1)[0][0]


def _scan(buf: bytes, delimiter: str, columns: Sequence[int] = (), body_start: int = 0,
          marks: bytes | None = None) -> tuple[np.ndarray, np.ndarray, dict[int, int]]:
  """Per physical line: the number of fields (int32) and whether it is blank; and per
  column in `columns`, over the lines after byte `body_start`, the longest field in
  bytes or, with `marks`, how many of its fields hold one of those bytes.

  Field bounds come from the delimiters (for whitespace: the token starts), so a
  field's length may count the spaces or quotes around it.
  """
  fields, blank = [], []
  stats = dict.fromkeys(columns, 0)
  a = np.frombuffer(buf, np.uint8)
  pos = 0
  while pos < len(a):
    end = min(pos + _CHUNK_BYTES, len(a))
    if end < len(a):
      nl = buf.rfind(b"\n", pos, end)
      end = nl + 1 if nl >= pos else len(a)
    chunk = a[pos:end]
    nls = np.flatnonzero(chunk == 10)
    ends = nls if chunk[-1] == 10 else np.append(nls, len(chunk))
    starts = np.concatenate(([0], nls + 1))[:len(ends)]
    if delimiter == WHITESPACE:
      ws = (chunk == 32) | (chunk == 9) | (chunk == 13) | (chunk == 10)
      bounds = np.flatnonzero(~ws & np.concatenate(([True], ws[:-1])))  # token starts
      first = np.searchsorted(bounds, starts)
      n = np.searchsorted(bounds, ends) - first
      blank.append(n == 0)
    else:
      cr = (ends > starts) & (chunk[np.maximum(ends - 1, 0)] == 13)
      ends = ends - cr
      bounds = np.flatnonzero(chunk == ord(delimiter))  # delimiters
      first = np.searchsorted(bounds, starts)
      n = np.searchsorted(bounds, ends) - first + 1
      blank.append(ends == starts)
    fields.append(n.astype(np.int32))
    if columns and len(bounds):
      body = starts + pos >= body_start
      at = None
      if marks is not None:
        mask = np.zeros(len(chunk), bool)
        for m in marks:
          mask |= chunk == m
        at = np.flatnonzero(mask)
      for c in columns:
        lo, hi = _field_spans(c, delimiter == WHITESPACE, bounds, first, n, starts, ends)
        use = body & (n > c)
        if at is None:
          stats[c] = max(stats[c], int(np.max(hi - lo, where=use, initial=0)))
        else:
          stats[c] += int(np.count_nonzero(
              use & (np.searchsorted(at, hi) > np.searchsorted(at, lo))))
    pos = end
  return np.concatenate(fields), np.concatenate(blank), stats


def _field_spans(c: int, whitespace: bool, bounds: np.ndarray, first: np.ndarray,
                 n: np.ndarray, starts: np.ndarray, ends: np.ndarray):
  """[lo, hi) byte offsets of field `c` on each line of a `_scan` chunk, where the line
  has more than `c` fields. `bounds` are the token starts (whitespace) or the
  delimiters, `first` each line's first bound, `n` its number of fields."""
  last = len(bounds) - 1
  if whitespace:
    lo = bounds[np.minimum(first + c, last)]
    after = bounds[np.minimum(first + c + 1, last)]  # the next token's start
  else:
    lo = starts if c == 0 else bounds[np.minimum(first + c - 1, last)] + 1
    after = bounds[np.minimum(first + c, last)]  # the delimiter after the field
  return lo, np.where(n > c + 1, after, ends)


def _single_byte(data: bytes, delimiter: str) -> tuple[bytes | None, str]:
  """Rewrites a `::` delimiter as one byte absent from the data (the C parser needs one)."""
  if delimiter != "::":
    return data, delimiter
  for sub in ("\t", "\x1f", "|", ";", "\x1e"):
    if sub.encode() not in data:
      return data.replace(b"::", sub.encode()), sub
  return None, delimiter  # every candidate occurs: the line-by-line path decides


# Field kinds of `parse_table`: integer ids (exact, see `exact_integer`), string ids,
# integers (timestamps), finite floats. What a message says each must be.
KINDS = {"user_id": "an integer user id", "item_id": "an integer item id",
         "str": "a non-empty id", "int": "an integer", "float": "a finite number"}


def parse_table(data: bytes, path: str, layout: Layout,
                kinds: dict[int, str]) -> tuple[dict[int, np.ndarray], np.ndarray]:
  """Parses the columns in `kinds` (keys of `KINDS`) of every data line.

  Every non-blank line after the header must have `layout.num_fields` fields; integer
  fields ("user_id", "item_id", "int") must hold exact integers (`exact_integer`),
  "float" fields finite numbers, "str" fields non-empty text.

  Returns:
    ({column: values}, line_R) with int64 / float64 / object arrays and the 1-based
    line number (int32) of each row.
  """
  for col, kind in kinds.items():
    if kind not in KINDS:
      raise ValueError(f"field kind must be one of {tuple(KINDS)}, got {kind!r}")
    if col >= layout.num_fields:
      raise DataFormatError(path, layout.header_lines + 1, f"expected at least "
                            f"{col + 1} fields (column {col} is used), got "
                            f"{layout.num_fields}")
  if data.startswith(b"\xef\xbb\xbf"):
    data = data[3:]
  if "str" in kinds.values():
    _check_utf8(data, path)
  parsed = _parse_fast(data, layout, kinds)
  if parsed is None:
    _locate_error(data, path, layout, kinds)
    raise DataFormatError(path, None, "could not be parsed as a delimited ratings table")
  return parsed


def _check_utf8(data: bytes, path: str) -> None:
  """String ids must be UTF-8 (else they could not be written back out as text)."""
  try:
    data.decode("utf-8")
  except UnicodeDecodeError as e:
    line_no = data.count(b"\n", 0, e.start) + 1
    raise DataFormatError(path, line_no, f"expected UTF-8 text, got the byte "
                          f"0x{data[e.start]:02x} that is not UTF-8 (Latin-1 or another "
                          "8-bit encoding?); save the file as UTF-8") from None


def _read_columns(buf: bytes, sep: str, layout: Layout, dtype: dict):
  """pandas' C parser on the columns `dtype` names; None when it refuses the data."""
  try:
    with warnings.catch_warnings():  # e.g. "invalid value in cast" on a bad integer
      warnings.simplefilter("ignore", RuntimeWarning)
      return pd.read_csv(io.BytesIO(buf), sep=r"\s+" if sep == WHITESPACE else sep,
                         header=None, skiprows=layout.header_lines, usecols=sorted(dtype),
                         dtype=dtype, engine="c", na_filter=False,
                         skip_blank_lines=True, encoding_errors="surrogateescape")
  except (ValueError, OverflowError, TypeError, UnicodeError, pd.errors.ParserError):
    return None


def _parse_fast(data, layout, kinds):
  """pandas C-parser path; None whenever anything looks wrong (the slow path explains).

  Integer ids must come out exactly as written. pandas parses an int64 column exactly
  from integer text, but through a float64 when any field of the column is written as
  a float (`12.0`), and then distinct large ids can round to one. Such a column is read
  again as text and converted by `exact_integer` (once per distinct value). The checks
  cost nothing when no line after the header holds a '.', 'e' or 'E' (MovieLens
  ratings.dat and u.data); otherwise a column needs no second look when all its
  fields are at most 15 bytes long and its values at most 2**53 (texts that short
  parse exactly even as floats), or else when none of its fields holds such a byte
  (then pandas parsed integer text).
  """
  buf, sep = _single_byte(data, layout.delimiter)
  if buf is None:
    return None
  body_start = 0
  if layout.header_lines:
    nl = buf.find(b"\n")
    body_start = len(buf) if nl < 0 else nl + 1
  marks = bytes(m for m in b".eE" if len(sep) != 1 or m != ord(sep))
  id_cols = []
  if any(buf.find(bytes([m]), body_start) >= 0 for m in marks):
    id_cols = [c for c in sorted(kinds) if kinds[c] in ("user_id", "item_id")]
  num_fields, blank, longest = _scan(buf, sep, id_cols, body_start)
  body = slice(layout.header_lines, None)
  keep = ~blank[body]
  if not keep.any() or np.any(num_fields[body][keep] != layout.num_fields):
    return None
  lines = (np.flatnonzero(keep) + layout.header_lines + 1).astype(np.int32)
  cols = sorted(kinds)
  dtype = {c: {"user_id": np.int64, "item_id": np.int64, "int": np.int64,
               "float": np.float64, "str": str}[kinds[c]] for c in cols}
  frame = _read_columns(buf, sep, layout, dtype)
  if frame is None or len(frame) != len(lines):
    return None
  out = {}
  for c in cols:
    if kinds[c] == "str":  # spaces around an id are layout, as around a number
      values = frame[c].str.strip().to_numpy(dtype=object)
      if any(not v for v in values):
        return None
    else:
      values = frame[c].to_numpy()
      if values.dtype != (np.float64 if kinds[c] == "float" else np.int64):
        return None
      if kinds[c] == "float" and not np.all(np.isfinite(values)):
        return None
    out[c] = values
  unsure = [c for c in id_cols if longest[c] > 15 or not _fits_float(out[c])]
  if unsure:
    _, _, floats = _scan(buf, sep, unsure, body_start, marks)
    redo = [c for c in unsure if floats[c]]
    if redo:
      frame = _read_columns(buf, sep, layout, {c: str for c in redo})
      if frame is None or len(frame) != len(lines):
        return None
      for c in redo:
        out[c] = _exact_integers(frame[c].to_numpy(dtype=object))
        if out[c] is None:
          return None
  return out, lines


def _fits_float(values: np.ndarray) -> bool:
  """Whether every int64 value is at most 2**53 in magnitude."""
  return not len(values) or (int(values.max()) <= EXACT_FLOAT_LIMIT and
                             int(values.min()) >= -EXACT_FLOAT_LIMIT)


def _exact_integers(texts: np.ndarray) -> np.ndarray | None:
  """int64 values of integer fields given as text, or None if any is not exact."""
  uniq, inverse = np.unique(texts.astype(str), return_inverse=True)
  values = np.empty(len(uniq), np.int64)
  for k, t in enumerate(uniq):
    value, _ = exact_integer(t)
    if value is None:
      return None
    values[k] = value
  return values[inverse.ravel()]


_INT_TEXT = re.compile(r"[+-]?[0-9]+")
_FLOAT_TEXT = re.compile(r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?")
# Every integer up to 2**53 is a float64, so an id written as a float up to there lost
# no digit on its way into the file; beyond, neighbouring ids may round to one float.
EXACT_FLOAT_LIMIT = 2**53


def exact_integer(text: str) -> tuple[int | None, str | None]:
  """(value, None) for a field holding an integer exactly, else (None, why not).

  Integers are read from their digits (up to int64). A number written as a float
  (`12.0`, `1e3`) is accepted only when its decimal value is a whole number of at most
  2**53 in magnitude, decided on the text with `decimal` (no rounding), so two
  different texts never become one id: `1.0000000000000001`, `18014398509481985.0`
  and `1e30` are refused. `why` is "syntax", "range" (beyond int64), "fraction" or
  "float_limit" (a float beyond 2**53).
  """
  s = text.strip().strip('"')
  if len(s) > 40:  # longer than any int64 or exact float text (and int()'s digit limit)
    return None, "range" if _INT_TEXT.fullmatch(s) else "syntax"
  if _INT_TEXT.fullmatch(s):
    value = int(s)
    return (value, None) if _INT64_MIN <= value <= _INT64_MAX else (None, "range")
  if not _FLOAT_TEXT.fullmatch(s):
    return None, "syntax"
  d = decimal.Decimal(s)
  if d.adjusted() > 16 or abs(d) > EXACT_FLOAT_LIMIT:
    return None, "float_limit"
  if d != d.to_integral_value():
    return None, "fraction"
  return int(d), None


_NOTES = {"fraction": " (not a whole number)",
          "float_limit": f" (a number written as a float is taken as an integer only up "
                         f"to 2**53 = {EXACT_FLOAT_LIMIT}: beyond, floats lose digits; "
                         "write it as an integer)"}


def _check_field(text: str, kind: str) -> tuple[str, str] | None:
  """None when `text` is a valid `kind` field, else (what was expected, a note on what
  was found, maybe empty) for a message."""
  s = text.strip().strip('"')
  if kind == "str":
    return None if s else (KINDS[kind], "")
  if kind == "float":
    if not s.isascii() or "_" in s:  # Python's float() takes these, the C parser not
      return KINDS[kind], ""
    try:
      return None if math.isfinite(float(s)) else (KINDS[kind], "")
    except ValueError:
      return KINDS[kind], ""
  value, why = exact_integer(text)
  if value is not None:
    return None
  if why == "range":
    return f"{KINDS[kind]} that fits in 64 bits", ""
  return KINDS[kind], _NOTES.get(why, "")


def _locate_error(data: bytes, path: str, layout: Layout, kinds: dict[int, str]) -> None:
  """Scans line by line and raises DataFormatError at the first bad line (if any)."""
  text = data.decode("utf-8", "replace")
  delim = layout.delimiter
  shown = "spaces" if delim == WHITESPACE else repr(delim)
  num_rows, quoted = 0, None
  for no, line in enumerate(text.split("\n"), start=1):
    line = line.rstrip("\r")
    if no <= layout.header_lines or not line.strip() and (delim == WHITESPACE or not line):
      continue
    fields = split_fields(line, delim)
    if len(fields) != layout.num_fields:
      raise DataFormatError(path, no, f"expected {layout.num_fields} fields separated by "
                            f"{shown}, got {len(fields)}: {line[:120]!r}")
    for col, kind in sorted(kinds.items()):
      bad = _check_field(fields[col], kind)
      if bad is not None:
        raise DataFormatError(path, no, f"expected {bad[0]} in field {col + 1}, got "
                              f"{fields[col][:40]!r}{bad[1]}: {line[:120]!r}")
    if quoted is None and any(_stray_quote(f) for f in fields):
      quoted = (no, line)
    num_rows += 1
  if num_rows == 0:
    raise DataFormatError(path, None, "expected ratings, got no data lines" +
                          (" after the header" if layout.header else ""))
  if quoted is not None:  # the C parser joins a quoted field holding the delimiter
    raise DataFormatError(path, quoted[0], f"expected fields without quotes inside them "
                          f"(a quoted field may not hold the delimiter {shown}), got "
                          f"{quoted[1][:120]!r}")


def _stray_quote(field: str) -> bool:
  """Whether `field` has a double quote other than one pair around all of it."""
  s = field.strip()
  if len(s) >= 2 and s[0] == s[-1] == '"':
    s = s[1:-1]
  return '"' in s


# Header names that identify a column, checked in this order (lower case, no _ - or space).
_NAME_HINTS = (("user", ("user",)), ("rating", ("rating", "score", "stars")),
               ("timestamp", ("timestamp", "time", "date")),
               ("item", ("item", "movie", "joke", "book", "isbn", "product", "asin",
                         "track", "artist", "song", "business")))


def columns_from_header(header: Sequence[str]) -> tuple[int, ...] | None:
  """(user, item, rating[, timestamp]) column indices named by a header, or None."""
  names = [h.lower().replace("_", "").replace("-", "").replace(" ", "") for h in header]
  found = {}
  for role, hints in _NAME_HINTS:
    for k, name in enumerate(names):
      if k not in found.values() and any(h in name for h in hints):
        found[role] = k
        break
  if not {"user", "item", "rating"} <= found.keys():
    return None
  cols = (found["user"], found["item"], found["rating"])
  return cols + ((found["timestamp"],) if "timestamp" in found else ())


def read_delimited_bytes(data: bytes, path: str, *, delimiter: str | None = None,
                         header: str = "auto", columns: Sequence[int] | None = None,
                         expect_header: Sequence[str] | None = None,
                         string_ids: bool = False, duplicates: str = "error",
                         layout: Layout | None = None) -> RawRatings:
  """`read_delimited` on contents already in memory (see there)."""
  if columns is not None:
    columns = tuple(int(c) for c in columns)
    if len(columns) not in (3, 4) or len(set(columns)) != len(columns) or min(columns) < 0:
      raise ValueError(f"columns must be 3 or 4 distinct indices (user, item, rating"
                       f"[, timestamp]), got {columns}")
  if layout is None:
    text_fields = columns[:2] if columns and string_ids else ((0, 1) if string_ids else ())
    layout = sniff(data, path, delimiter=delimiter, header=header,
                   text_fields=text_fields)
  if expect_header is not None:
    got = tuple(h.lower() for h in layout.header or ())
    if got != tuple(h.lower() for h in expect_header):
      shown = "no header" if layout.header is None else repr(",".join(layout.header))
      raise DataFormatError(path, 1, f"expected the header {','.join(expect_header)!r}, "
                            f"got {shown}")
  if columns is None:
    columns = columns_from_header(layout.header) if layout.header else None
  if columns is None:
    if layout.header is not None and layout.num_fields not in (3, 4):
      raise DataFormatError(path, 1, f"expected a header naming the user, item and "
                            f"rating columns (e.g. userId,movieId,rating), got "
                            f"{','.join(layout.header)[:120]!r}; name the columns to use")
    if layout.num_fields not in (3, 4):
      raise DataFormatError(path, layout.header_lines + 1, f"expected 3 or 4 fields "
                            f"(user, item, rating[, timestamp]), got {layout.num_fields}; "
                            "name the columns to use")
    columns = tuple(range(layout.num_fields))
  kinds = {columns[0]: "str" if string_ids else "user_id",
           columns[1]: "str" if string_ids else "item_id", columns[2]: "float"}
  if len(columns) == 4:
    kinds[columns[3]] = "int"
  values, line = parse_table(data, path, layout, kinds)
  ts = values[columns[3]] if len(columns) == 4 else None
  raw = RawRatings.single(path, values[columns[0]], values[columns[1]],
                          values[columns[2]], ts, line)
  return resolve_duplicates(raw, duplicates)


def read_delimited(path, member: str | None = None, **kwargs) -> RawRatings:
  """Reads (user, item, rating[, timestamp]) rows from a delimited text file.

  Args:
    path: a plain, .gz or .zip file.
    member: the file inside a zip (None: its only file).
    delimiter: "::", "\\t"/"tab", ",", ";", "|", "whitespace"; None sniffs it.
    header: "auto" (line 1 is a header if not numeric), "yes" or "no".
    columns: (user, item, rating[, timestamp]) field indices; None takes them from a
      recognisable header (userId, movie_id, rating, ...) or else the fields in order.
    expect_header: header the file must have (case-insensitive), for official formats.
    string_ids: keep ids as strings instead of requiring integers.
    duplicates: "error", "keep_last" or "mean" for repeated (user, item) pairs.
  """
  data, name = read_bytes(path, member)
  return read_delimited_bytes(data, name, **kwargs)
