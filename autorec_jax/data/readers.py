"""Reads any supported ratings source, recognising what it is.

`read_ratings(path)` takes a file, a .gz, a .zip, or a folder holding official files
(`ml-1m/`, `ml-100k/`, a folder with `ratings_no_timestamps.csv.gz` or `jester3.mat`),
and picks the reader by name and content:

- MovieLens-100K `u.data`, `u1.base` ... `ub.test`: tab-separated, no header (fixed).
- MovieLens-1M/-10M `ratings.dat`: `UserID::MovieID::Rating::Timestamp` (fixed).
- MovieLens-20M/-25M/latest `ratings.csv` and any other delimited text: delimiter,
  header and columns sniffed (`text.read_delimited`).
- Jester dataset 1 matrices: `.xls`, `.mat`, or delimited text with 101 fields
  (`jester.read_jester_matrix`); several `jester-data-N.xls` parts are concatenated.

A rating matrix with split masks (`.mat` or `.npz`, Monti et al.'s layout) is not
ratings in any of these formats: it is refused with a message saying to read it with
`data.name=monti` (`masks.read_split_matrix`).

Every reader returns `text.RawRatings` (original ids and the line of each rating) with
duplicate (user, item) pairs resolved per file. Where two files could be the ratings
(two in a zip, two copies of one name in a folder) nothing is picked silently: the
candidates are named and the user chooses.
"""

from __future__ import annotations

import os
import re

from autorec_jax.data import errors, jester, masks, text
from autorec_jax.data.errors import DataFormatError, DataNotFoundError

# Official ratings files by base name, most preferred first. "parts" files are all
# read, in name order, as consecutive parts of one dataset (Jester dataset 1).
# Originals come before derived copies (`ratings.csv.gz`, `ratings_no_timestamps...`).
_KNOWN = (
    (r"ratings\.dat(\.gz)?", "one"),
    (r"ratings\.csv", "one"),
    (r"u\.data(\.gz)?", "one"),
    (r"jester-data-\d\.xls", "parts"),
    (r"jester_dataset_1_\d\.zip", "parts"),
    (r"jester\d*\.mat", "one"),
    (r"ml-[\w.-]+\.zip", "one"),
    (r"ratings\.csv\.gz", "one"),
    (r"ratings_no_timestamps\.csv\.gz", "one"),
)
_ML100K = re.compile(r"u(\.data|[1-5]\.base|[1-5]\.test|[ab]\.base|[ab]\.test)")
ML_CSV_HEADER = ("userId", "movieId", "rating", "timestamp")


def read_movielens_100k(path, member: str | None = None, *,
                        duplicates: str = "error") -> text.RawRatings:
  """Reads ML-100K `u.data` (or `u1.base`, `u1.test`, ...): tab-separated, no header."""
  return text.read_delimited(path, member, delimiter="\t", header="no",
                             columns=(0, 1, 2, 3), duplicates=duplicates)


def read_movielens_dat(path, member: str | None = None, *,
                       duplicates: str = "error") -> text.RawRatings:
  """Reads ML-1M / ML-10M `ratings.dat`: `UserID::MovieID::Rating::Timestamp`."""
  return text.read_delimited(path, member, delimiter="::", header="no",
                             columns=(0, 1, 2, 3), duplicates=duplicates)


def read_movielens_csv(path, member: str | None = None, *,
                       duplicates: str = "error") -> text.RawRatings:
  """Reads ML-20M / ML-25M / ml-latest `ratings.csv`: header userId,movieId,rating,..."""
  return text.read_delimited(path, member, delimiter=",", header="yes",
                             columns=(0, 1, 2, 3), expect_header=ML_CSV_HEADER,
                             duplicates=duplicates)


def read_auto(path, member: str | None = None, *,
              duplicates: str = "error") -> text.RawRatings:
  """`read_ratings` with everything sniffed."""
  return read_ratings(path, member, duplicates=duplicates)


# Readers by name, for callers that know a file's format (the dataset registry).
READERS = {
    "auto": read_auto,
    "movielens_100k": read_movielens_100k,
    "movielens_dat": read_movielens_dat,
    "movielens_csv": read_movielens_csv,
}


def _base(name: str) -> str:
  return os.path.basename(name.rstrip("/"))


def _candidates(names: list[str]) -> list[tuple[list[str], str]]:
  """The official ratings files among `names`, most preferred pattern first: per
  pattern that matches, (the matching names sorted, "one" or "parts")."""
  names = [n for n in names if "__MACOSX/" not in n]
  found = []
  for pattern, kind in _KNOWN:
    hits = sorted(n for n in names if re.fullmatch(pattern, _base(n)))
    if hits:
      found.append((hits, kind))
  return found


def zip_ratings_members(path) -> tuple[list[str], str]:
  """The ratings file(s) inside a zip and "one" or "parts" (Jester dataset 1 parts).

  The zip must hold exactly one official ratings file (ratings.dat, ratings.csv,
  u.data, ...; or the parts of one Jester dataset), or exactly one file of any name:
  with two candidates nothing tells which is meant, so both are named and the zip is
  refused rather than one picked silently.
  """
  path = os.fspath(path)
  names = text.zip_members(path)
  if not names:
    raise DataFormatError(path, None, "expected a ratings file in the zip, got an archive "
                          "that holds no files")
  if "[Content_Types].xml" in names:
    raise DataFormatError(path, None, "expected ratings as text (plain, .gz or .zip), got "
                          "an Office document (an Excel .xlsx workbook?); save the sheet "
                          "as CSV")
  found = _candidates(names)
  if len(found) == 1 and (found[0][1] == "parts" or len(found[0][0]) == 1):
    return found[0]
  if found:
    hits = [n for group, _ in found for n in group]
    raise DataFormatError(path, None, f"expected one ratings file in the zip, got "
                          f"{len(hits)}: {text.shown_names(hits)}; unzip the one to read "
                          "and pass it as the data path (--config.data.path=FILE)")
  if len(names) == 1:
    return names, "one"
  raise DataFormatError(path, None, f"expected a ratings file in the zip (ratings.dat, "
                        f"ratings.csv, u.data, jester-data-N.xls) or a zip of one file, got "
                        f"{len(names)} files: {text.shown_names(names)}; unzip the one to "
                        "read and pass it as the data path (--config.data.path=FILE)")


def pick_zip_member(path) -> str:
  """The one ratings file inside a zip (see `zip_ratings_members`)."""
  members, kind = zip_ratings_members(path)
  if len(members) != 1:
    raise DataFormatError(path, None, f"expected one ratings file in the zip, got the "
                          f"{len(members)} parts {text.shown_names(members)}")
  return members[0]


def find_in_dir(directory) -> list[str]:
  """Paths of the official ratings file(s) in a folder, or DataNotFoundError.

  Entries that are not folders count even when they are not regular files (a named
  pipe, a broken link), so that reading them reports why instead of searching on. Of
  several official names the most preferred is read (originals before derived copies);
  two files of one preference (`ratings.dat` and `ratings.dat.gz`) are refused.
  """
  directory = os.fspath(directory)
  names = [n for n in errors.list_dir(directory)
           if errors.is_file_like(os.path.join(directory, n))]
  found = _candidates(names)
  if not found:
    raise DataNotFoundError(
        f"{directory}: no ratings file found; expected one of ratings.dat, ratings.csv, "
        "u.data, jester-data-N.xls, jester*.mat, ratings_no_timestamps.csv.gz, "
        "ml-*.zip (or pass the file itself)")
  hits, kind = found[0]
  if kind == "one" and len(hits) > 1:
    raise DataFormatError(directory, None, f"expected one ratings file in the folder, got "
                          f"{', '.join(hits)}; pass the one to read as the data path "
                          "(--config.data.path=FILE)")
  return [os.path.join(directory, n) for n in hits]


def read_ratings(path, member: str | None = None, *, delimiter: str | None = None,
                 header: str = "auto", columns=None, string_ids: bool = False,
                 duplicates: str = "error") -> text.RawRatings:
  """Reads ratings from a file, .gz, .zip or folder, sniffing the format.

  Args:
    path: file, archive or folder.
    member: file inside a zip; None picks the official ratings file (see
      `zip_ratings_members`; the parts of Jester dataset 1 in one zip are all read).
    delimiter, header, columns, string_ids: generic text settings (see
      `text.read_delimited`). When any is set, text files skip the official-name
      readers and are read with exactly these settings.
    duplicates: "error", "keep_last" or "mean" for repeated (user, item) pairs.

  Raises:
    DataNotFoundError: `path` does not exist (or is a broken link).
    DataAccessError: `path` is not a regular file or folder, or cannot be read.
    DataFormatError: the contents are malformed.
  """
  path = os.fspath(path)
  if os.path.isdir(path):
    found = find_in_dir(path)
    if len(found) > 1 or re.fullmatch(r"jester-data-\d\.xls|jester_dataset_1_\d\.zip",
                                      _base(found[0])):
      parts = [(p, pick_zip_member(p) if p.endswith(".zip") else None) for p in found]
      return jester.read_jester_parts(parts)
    path = found[0]
  errors.check_file(path, "file or folder")
  if member is None and _base(path).lower().endswith(".npz"):
    masks.refuse_npz(path)  # a NumPy archive, not ratings: say what reads it
  if member is None and _is_zip(path):
    members, kind = zip_ratings_members(path)
    if kind == "parts" and len(members) > 1:
      return jester.read_jester_parts([(path, m) for m in members])
    member = members[0]
  base = _base(member or path).lower()
  base = base[:-3] if base.endswith(".gz") else base
  if base.endswith((".mat", ".xls")):
    return jester.read_jester_matrix(path, member)
  generic = delimiter is not None or header != "auto" or columns is not None or string_ids
  if not generic and _ML100K.fullmatch(base):
    return read_movielens_100k(path, member, duplicates=duplicates)
  if not generic and base == "ratings.dat":
    return read_movielens_dat(path, member, duplicates=duplicates)
  data, name = text.read_bytes(path, member)
  text_fields = ((columns[:2] if columns else (0, 1)) if string_ids else ())
  layout = text.sniff(data, name, delimiter=delimiter, header=header,
                      text_fields=text_fields)
  if columns is None and layout.num_fields == jester.NUM_JOKES + 1:
    return jester.read_jester_matrix(path, member)
  return text.read_delimited_bytes(data, name, columns=columns, string_ids=string_ids,
                                   duplicates=duplicates, layout=layout)


def _is_zip(path: str) -> bool:
  with errors.open_file(path) as f:
    return errors.read_from(f, path, 4) in (b"PK\x03\x04", b"PK\x05\x06")
