"""MATLAB .mat files: v4/v5 through scipy.io, v7.3 (HDF5) through the optional h5py.

`variable_names(data, name)` lists a file's variables and `read_variables(data, name,
keys)` reads some of them, each as MATLAB shows it: rows x columns, a dense numpy
array or a `scipy.sparse.csc_matrix`. MATLAB writes a v7.3 file as HDF5 (after a
512-byte text header) and stores every dense array column-major, so h5py sees it
transposed and one transpose restores it; a sparse matrix is an HDF5 group of its
compressed-column arrays `data` (the values), `ir` (the row of each value) and `jc`
(where each column starts), with the row count in its `MATLAB_sparse` attribute
(when that attribute is missing the rows are counted up to the highest row used).

Only real numeric matrices are returned (double, single, integers, logical); a cell,
struct, char, complex or otherwise unreadable variable is a DataFormatError naming the
file and the variable. Reading v7.3 needs h5py: `pip install 'autorec_jax[mat]'`.
"""

from __future__ import annotations

import io
from typing import Sequence

import numpy as np
import scipy.io
import scipy.sparse as sp

from autorec_jax.data.errors import DataError, DataFormatError

HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
INSTALL_H5PY = "pip install 'autorec_jax[mat]' (or pip install h5py)"
# MATLAB classes that hold real numbers; anything else (cell, struct, char,
# function_handle, an object) is not a matrix of ratings.
_NUMERIC_CLASSES = {"double", "single", "logical", "int8", "uint8", "int16", "uint16",
                    "int32", "uint32", "int64", "uint64"}


def is_hdf5(data: bytes) -> bool:
  """Whether `data` is an HDF5 file: its signature at offset 0, 512, 1024, 2048, ...
  (a MATLAB v7.3 file has it at 512, after its text header)."""
  offset = 0
  while offset + len(HDF5_SIGNATURE) <= len(data):
    if data.startswith(HDF5_SIGNATURE, offset):
      return True
    offset = 512 if offset == 0 else offset * 2
  return False


def variable_names(data: bytes, name: str) -> list[str]:
  """The names of the variables of a .mat file's contents (`name`: for messages)."""
  if is_hdf5(data):
    with _open_hdf5(data, name) as f:
      return [k for k in _hdf5_call(name, None, lambda: list(f.keys()))
              if not k.startswith("#")]  # MATLAB's #refs# and #subsystem# groups
  try:
    return [entry[0] for entry in scipy.io.whosmat(io.BytesIO(data))]
  except Exception as e:  # scipy raises many types on corrupt files
    raise _unreadable(name, e) from None


def read_variables(data: bytes, name: str, keys: Sequence[str]
                   ) -> dict[str, np.ndarray | sp.csc_matrix]:
  """The variables `keys` of a .mat file's contents, as rows x columns matrices.

  Raises:
    DataError: a v7.3 file and no h5py installed.
    DataFormatError: the file is corrupt, or a variable is missing or not a real
      numeric array.
  """
  if is_hdf5(data):
    with _open_hdf5(data, name) as f:
      return {key: _hdf5_call(name, key, lambda key=key: _hdf5_variable(f, name, key))
              for key in keys}
  try:
    variables = scipy.io.loadmat(io.BytesIO(data), variable_names=list(keys))
  except Exception as e:  # scipy raises many types on corrupt files
    raise _unreadable(name, e) from None
  out = {}
  for key in keys:
    if key not in variables:
      raise DataFormatError(name, None, f"expected a variable {key}, got none of that "
                            "name")
    out[key] = check_numeric(variables[key], name, key)
  return out


def check_numeric(x, name: str, key: str):
  """`x` when it is a real numeric (or boolean) array or sparse matrix, else the
  DataFormatError naming file `name` and variable `key`."""
  dtype = getattr(x, "dtype", None)
  if dtype is None or not (dtype == bool or np.issubdtype(dtype, np.number)) or (
      np.issubdtype(dtype, np.complexfloating)):
    shown = dtype if dtype is not None else type(x).__name__
    raise DataFormatError(name, None, f"expected a real numeric matrix {key}, got {shown}")
  return x


def _unreadable(name: str, e: Exception) -> DataFormatError:
  return DataFormatError(name, None, f"expected a MATLAB .mat file, got an unreadable "
                         f"file ({type(e).__name__}: {e})")


def _open_hdf5(data: bytes, name: str):
  try:
    import h5py  # pylint: disable=import-outside-toplevel
  except ImportError:
    raise DataError(f"{name}: reading MATLAB v7.3 (HDF5) .mat files needs the optional "
                    f"h5py package: {INSTALL_H5PY}") from None
  try:
    return h5py.File(io.BytesIO(data), "r")
  except Exception as e:  # h5py raises OSError, ValueError, ... on corrupt files
    raise DataFormatError(name, None, f"expected a MATLAB v7.3 (HDF5) .mat file, got an "
                          f"unreadable one ({type(e).__name__}: {e})") from None


def _hdf5_call(name: str, key: str | None, read):
  """`read()`, with a failure of the HDF5 library (a truncated or corrupt file) turned
  into a DataFormatError naming the file and the variable."""
  try:
    return read()
  except DataError:
    raise
  except Exception as e:  # pylint: disable=broad-except
    what = f"variable {key}: " if key else ""
    raise DataFormatError(name, None, f"{what}expected a readable MATLAB v7.3 (HDF5) "
                          f"variable, got a corrupt one ({type(e).__name__}: {e})") from None


def _matlab_class(node) -> str | None:
  value = node.attrs.get("MATLAB_class")
  if value is None:
    return None
  return value.decode("ascii", "replace") if isinstance(value, bytes) else str(value)


def _hdf5_variable(f, name: str, key: str):
  """One v7.3 variable: a dense dataset (transposed back) or a sparse group."""
  import h5py  # pylint: disable=import-outside-toplevel

  node = f.get(key)
  if node is None:
    raise DataFormatError(name, None, f"expected a variable {key}, got none of that name")
  cls = _matlab_class(node)
  if cls is not None and cls not in _NUMERIC_CLASSES:
    raise DataFormatError(name, None, f"expected a real numeric matrix {key}, got a "
                          f"MATLAB {cls}")
  if isinstance(node, h5py.Group):
    if "jc" not in node:
      raise DataFormatError(name, None, f"expected a real numeric matrix {key}, got an "
                            f"HDF5 group of {', '.join(node.keys()) or 'nothing'} (a "
                            "sparse matrix has data, ir and jc)")
    return _sparse(node, name, key)
  if node.attrs.get("MATLAB_empty"):
    dims = np.asarray(node[()]).ravel()
    return np.zeros(tuple(int(d) for d in dims) or (0, 0))
  if node.dtype.names or node.dtype.kind not in "biuf":  # complex is a compound type
    raise DataFormatError(name, None, f"expected a real numeric matrix {key}, got "
                          f"{node.dtype if not node.dtype.names else 'complex numbers'}")
  return np.asarray(node[()]).T


def _sparse(group, name: str, key: str) -> sp.csc_matrix:
  """A MATLAB sparse matrix from its compressed-column arrays."""
  jc = np.asarray(group["jc"][()], dtype=np.int64).ravel()
  ir = (np.asarray(group["ir"][()], dtype=np.int64).ravel() if "ir" in group
        else np.zeros(0, np.int64))
  values = (np.asarray(group["data"][()]).ravel() if "data" in group
            else np.zeros(len(ir)))
  check_numeric(values, name, key)
  rows = group.attrs.get("MATLAB_sparse")
  rows = int(rows) if rows is not None else (int(ir.max()) + 1 if len(ir) else 0)
  try:
    if len(jc) < 1 or len(ir) != len(values):
      raise ValueError(f"{len(values)} values, {len(ir)} row indices, {len(jc)} column "
                       "starts")
    x = sp.csc_matrix((values, ir, jc), shape=(rows, len(jc) - 1))
    x.check_format(full_check=True)
  except ValueError as e:
    raise DataFormatError(name, None, f"variable {key}: expected a MATLAB sparse matrix "
                          f"(data, ir, jc), got an inconsistent one ({e})") from None
  return x
