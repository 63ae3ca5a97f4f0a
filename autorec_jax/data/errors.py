"""Errors raised for bad or missing data, each naming the file (and line) at fault."""

from __future__ import annotations


class DataError(Exception):
  """Base class: anything wrong with a user's data that they can fix."""


class DataFormatError(DataError, ValueError):
  """A file does not hold what its format promises.

  The message reads `FILE:LINE: what was expected, what was found` (the line is
  1-based and counts a header line; it is omitted when the fault is the whole file).
  """

  def __init__(self, path, line: int | None, message: str):
    self.path = str(path)
    self.line = line
    self.reason = message
    where = f"{self.path}:{line}" if line is not None else self.path
    super().__init__(f"{where}: {message}")


class DataNotFoundError(DataError, FileNotFoundError):
  """A dataset is missing and cannot be downloaded; says which file to put where."""
