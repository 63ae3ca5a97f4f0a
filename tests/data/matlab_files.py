"""Writes small MATLAB-style files for tests: v7.3 (HDF5) the way MATLAB lays them out.

MATLAB stores a v7.3 file as HDF5 after a 512-byte text header (the HDF5 user block),
every dense array column-major (so HDF5 sees it transposed) with a `MATLAB_class`
attribute, and a sparse matrix as a group of its compressed-column arrays `data`,
`ir` and `jc` with its row count in the `MATLAB_sparse` attribute.
"""

from __future__ import annotations

import h5py
import numpy as np
import scipy.sparse as sp

# The text part of a v7.3 header; bytes 124..127 hold the version (0x0200) and 'IM'.
V73_TEXT = (b"MATLAB 7.3 MAT-file, Platform: GLNXA64, Created on: Mon Jan  1 00:00:00 "
            b"2024 HDF5 schema 1.00 .")


def write_v73(path, variables: dict, *, sparse=(), classes=None, row_attr=True) -> None:
  """Writes `variables` (name -> 2-D array) as a MATLAB v7.3 .mat file.

  Args:
    path: the file to write.
    variables: each a 2-D numpy array as MATLAB shows it (rows x columns).
    sparse: names to store as MATLAB sparse groups instead of dense datasets.
    classes: name -> MATLAB_class attribute (default "double").
    row_attr: write the sparse groups' MATLAB_sparse row count (MATLAB always does).
  """
  classes = classes or {}
  with h5py.File(path, "w", userblock_size=512) as f:
    for name, x in variables.items():
      cls = np.bytes_(classes.get(name, "double"))
      if name in sparse:
        c = sp.csc_matrix(np.asarray(x, dtype=np.float64))
        group = f.create_group(name)
        group.attrs["MATLAB_class"] = cls
        if row_attr:
          group.attrs["MATLAB_sparse"] = np.uint64(c.shape[0])
        group["data"] = c.data
        group["ir"] = c.indices.astype(np.uint64)
        group["jc"] = c.indptr.astype(np.uint64)
      else:
        dataset = f.create_dataset(name, data=np.asarray(x).T)  # column-major
        dataset.attrs["MATLAB_class"] = cls
  with open(path, "r+b") as f:
    f.write(V73_TEXT.ljust(116) + bytes(8) + b"\x00\x02IM")
