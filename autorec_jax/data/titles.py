"""Item titles for printing recommendations: MovieLens and Netflix Prize title files.

`read_titles(path)` recognises the format from the file's first line:

  MovieLens-1M/10M movies.dat   `MovieID::Title::Genres`
  MovieLens-100K u.item         `MovieID|Title|release date|...`
  MovieLens-20M/25M movies.csv  `movieId,title,genres` (a header, CSV quoting)
  Netflix movie_titles.txt      `MovieID,YearOfRelease,Title`, split on the first two
                                commas (titles keep further commas); the title becomes
                                `Title (Year)` like MovieLens titles, `Title` for NULL.

Files are decoded as UTF-8 when they are valid UTF-8 (movies.csv is), else as
ISO-8859-1 (movies.dat, u.item and movie_titles.txt are), so `Misérables` reads
right either way. A malformed line raises `DataFormatError` naming file and line.
"""

from __future__ import annotations

import csv
import io
import os
import re
from typing import Any, Iterable

from autorec_jax.data import errors
from autorec_jax.data.errors import DataFormatError

_NETFLIX = re.compile(r"^\d+,(\d{4}|NULL),")


def _decode(raw: bytes) -> str:
  try:
    return raw.decode("utf-8")
  except UnicodeDecodeError:
    return raw.decode("iso-8859-1")


def _movie_id(path: str, line_no: int, value: str) -> int:
  value = value.strip()
  if not (value.isascii() and value.isdigit()) or len(value) > 19 or int(value) >= 2**63:
    raise DataFormatError(path, line_no, f"expected an integer movie id (below 2**63), "
                          f"got {value[:40]!r}")
  return int(value)


def read_titles(path: str | os.PathLike) -> dict[int, str]:
  """{movie id: title} from a MovieLens or Netflix title file (format sniffed)."""
  path = os.fspath(path)
  text = _decode(errors.read_file(path, "titles file"))
  lines = text.splitlines()
  first = next((l for l in lines if l.strip()), None)
  if first is None:
    raise DataFormatError(path, None, "expected movie titles, got an empty file")
  if "::" in first:
    return _split_lines(path, lines, "::", min_fields=2)
  if first.lower().startswith("movieid,"):
    return _movies_csv(path, text)
  if _NETFLIX.match(first):
    return _netflix(path)
  if "|" in first:
    return _split_lines(path, lines, "|", min_fields=2)
  raise DataFormatError(path, 1, "expected a title file (MovieLens movies.dat, u.item or "
                        f"movies.csv, or Netflix movie_titles.txt), got {first[:120]!r}")


def _split_lines(path: str, lines: list[str], sep: str, min_fields: int) -> dict[int, str]:
  out = {}
  for no, line in enumerate(lines, start=1):
    if not line.strip():
      continue
    fields = line.split(sep)
    if len(fields) < min_fields:
      raise DataFormatError(path, no, f"expected MovieID{sep}Title..., got {line[:120]!r}")
    out[_movie_id(path, no, fields[0])] = fields[1]
  return out


def _movies_csv(path: str, text: str) -> dict[int, str]:
  out = {}
  reader = csv.reader(io.StringIO(text))
  next(reader)  # the header
  for row in reader:
    no = reader.line_num
    if not row:
      continue
    if len(row) < 2:
      raise DataFormatError(path, no, f"expected movieId,title,genres, got {row!r}")
    out[_movie_id(path, no, row[0])] = row[1]
  return out


def _netflix(path: str) -> dict[int, str]:
  """movie_titles.txt through the Netflix reader (ISO-8859-1, NULL years, commas)."""
  from autorec_jax.data import netflix_formats  # pylint: disable=import-outside-toplevel
  parsed = netflix_formats.read_movie_titles(path)
  return {int(m): (t if y == 0 else f"{t} ({y})")
          for m, y, t in zip(parsed.movie, parsed.year, parsed.title)}


def lookup(titles: dict[int, str] | None, item_ids: Iterable[Any]) -> list[str | None]:
  """The title of each item id (None when unknown or there is no titles file).

  Ids may be numpy integers or strings holding integers (`data.csv_string_ids`).
  """
  if not titles:
    return [None for _ in item_ids]
  out = []
  for item in item_ids:
    try:
      key = int(item)
    except (TypeError, ValueError):
      out.append(None)
      continue
    out.append(titles.get(key))
  return out
