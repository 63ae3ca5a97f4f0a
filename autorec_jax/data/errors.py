"""Errors raised for bad or missing data, each naming the file (and line) at fault, and
the file checks every reader opens its input through.

`open_file`, `read_from`, `read_file`, `check_file` and `list_dir` turn what the operating system
says about a path into one of these errors with the real cause: a missing path or a
dangling symbolic link (`DataNotFoundError`), a folder where a file is expected, a named
pipe, socket or device, a symbolic link loop, or a file or folder this user may not read
(`DataAccessError`). Files are opened without blocking and checked to be regular files
before anything is read, so a named pipe never stalls a reader.
"""

from __future__ import annotations

import errno
import os
import stat


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


class DataAccessError(DataError):
  """A path exists but cannot be read as data: `PATH: expected ..., got ...` with the
  cause (a folder, a named pipe, a symbolic link loop, permission denied)."""

  def __init__(self, path, message: str):
    self.path = str(path)
    self.reason = message
    super().__init__(f"{self.path}: {message}")


_KINDS = ((stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a named pipe (FIFO)"),
          (stat.S_ISSOCK, "a socket"), (stat.S_ISCHR, "a character device"),
          (stat.S_ISBLK, "a block device"))


def _kind(mode: int) -> str:
  return next((name for test, name in _KINDS if test(mode)), "not a regular file")


def _os_error(path: str, e: OSError, what: str) -> DataError:
  """The DataError for an OSError raised while statting, opening or reading `path`."""
  if e.errno == errno.ENOENT:
    if os.path.islink(path):
      try:
        target = os.readlink(path)
      except OSError:
        target = "?"
      return DataNotFoundError(f"{path}: no such {what}: it is a symbolic link to "
                               f"{target}, which does not exist")
    return DataNotFoundError(f"{path}: no such {what}")
  if e.errno == errno.ELOOP:
    return DataAccessError(path, f"expected a {what}, got a symbolic link loop (too many "
                           "levels of symbolic links); point the link at a real file")
  if e.errno in (errno.EACCES, errno.EPERM):
    return DataAccessError(path, f"expected a readable {what}, got permission denied "
                           f"({errno.errorcode[e.errno]}); fix its permissions (chmod "
                           "u+r, or u+rx for a folder) or read it as its owner")
  if e.errno == errno.ENOTDIR:
    return DataNotFoundError(f"{path}: no such {what}: a part of the path before its "
                             "last name is a file, not a folder")
  if e.errno == errno.EISDIR:
    return DataAccessError(path, f"expected a {what}, got a folder")
  reason = e.strerror or str(e)
  code = errno.errorcode.get(e.errno, "") if e.errno else ""
  return DataAccessError(path, f"expected a readable {what}, got an error from the "
                         f"system: {reason}" + (f" ({code})" if code else ""))


def check_file(path, what: str = "file") -> os.stat_result:
  """The stat of `path` when it is (a link to) a regular file, else the DataError.

  Args:
    path: the path to check.
    what: how messages call it ("file", "titles file", ...).
  """
  path = os.fspath(path)
  try:
    st = os.stat(path)
  except OSError as e:
    raise _os_error(path, e, what) from None
  except ValueError:  # an embedded NUL character
    raise DataNotFoundError(f"{path!r}: no such {what}: a path may not hold a NUL "
                            "character") from None
  if not stat.S_ISREG(st.st_mode):
    raise DataAccessError(path, f"expected a {what}, got {_kind(st.st_mode)}")
  return st


def open_file(path, what: str = "file"):
  """`path` opened for binary reading after checking it is a regular file.

  The file is opened with O_NONBLOCK and checked again on the open descriptor, so a
  named pipe (even one swapped in after the first check) fails at once instead of
  waiting for a writer.
  """
  path = os.fspath(path)
  check_file(path, what)
  flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
  try:
    fd = os.open(path, flags)
  except OSError as e:
    raise _os_error(path, e, what) from None
  try:
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
      raise DataAccessError(path, f"expected a {what}, got {_kind(mode)}")
    if hasattr(os, "set_blocking"):
      os.set_blocking(fd, True)
    return os.fdopen(fd, "rb")
  except BaseException:
    os.close(fd)
    raise


def read_from(f, path, size: int = -1, what: str = "file") -> bytes:
  """`f.read(size)` of the file `path` opened by `open_file`; a read error (EIO on a
  failing disk or mount) is a DataAccessError naming `path`."""
  try:
    return f.read(size)
  except OSError as e:
    raise _os_error(os.fspath(path), e, what) from None


def read_file(path, what: str = "file") -> bytes:
  """The whole contents of a regular file (see `open_file`); read errors are DataErrors."""
  path = os.fspath(path)
  with open_file(path, what) as f:
    return read_from(f, path, what=what)


def list_dir(path) -> list[str]:
  """The names in a folder; a DataError when it cannot be listed."""
  path = os.fspath(path)
  try:
    return os.listdir(path)
  except OSError as e:
    raise _os_error(path, e, "folder") from None


def is_file_like(path) -> bool:
  """Whether `path` names something other than a folder (a file, a named pipe, a broken
  or looping link): what a search for a named data file should pick up and then read,
  so that the reader reports why it cannot be read instead of looking elsewhere."""
  return os.path.lexists(path) and not os.path.isdir(path)
