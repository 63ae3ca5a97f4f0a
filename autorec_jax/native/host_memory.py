"""glibc malloc settings that keep XLA:CPU's per-step buffers in the heap.

XLA:CPU allocates a step's temporaries (activations, gradients, the updated
parameters before they replace the donated ones) afresh on every call. glibc serves
blocks above its mmap threshold (adaptive, at most 32 MiB) with a new mmap and
unmaps them on free, and threads other than the main one get arenas whose heaps are
trimmed back to the OS, so a step whose temporaries outgrow that threshold touches
fresh pages, tens of MiB of page faults, on every call. Measured on ML-1M with the
DeepRec benchmark model and one re-feeding step: 10,800 page faults per
step and 3.1-3.25 s per epoch with the defaults, none and 2.5 s with `tune_malloc()`;
steps without re-feeding had no faults either way and are unchanged.

`tune_malloc` keeps blocks below 256 MiB in one heap (one arena), trims the heap top
only beyond 512 MiB free, and pads heap growth by 64 MiB, so those buffers are
reused. Larger blocks (the data set's arrays) are still mmapped and returned to the
OS when freed. The cost is memory: freed blocks stay with the process, and the
Netflix-full-shaped run of experiments/netflix_memory.py peaked at 18.07 GiB RSS
instead of 15.45. `autorec_jax.main` and the benchmark scripts call it before JAX
starts computing; set AUTOREC_MALLOC_TUNING=0 to leave glibc's defaults. Elsewhere
than glibc (macOS, musl) it does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import platform

# mallopt parameters (glibc's malloc.h).
_M_TRIM_THRESHOLD = -1
_M_TOP_PAD = -2
_M_MMAP_THRESHOLD = -3
_M_ARENA_MAX = -8

ENV_VAR = "AUTOREC_MALLOC_TUNING"


def tune_malloc(*, mmap_threshold: int = 256 << 20, trim_threshold: int = 512 << 20,
                top_pad: int = 64 << 20) -> bool:
  """Applies the settings above to this process; True when glibc accepted them all.

  Call it before JAX's first computation (its worker threads would otherwise already
  hold their own arenas). A no-op returning False when AUTOREC_MALLOC_TUNING=0 or the
  C library is not glibc.
  """
  if os.environ.get(ENV_VAR, "1") == "0" or platform.libc_ver()[0] != "glibc":
    return False
  libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
  settings = ((_M_ARENA_MAX, 1), (_M_MMAP_THRESHOLD, mmap_threshold),
              (_M_TRIM_THRESHOLD, trim_threshold), (_M_TOP_PAD, top_pad))
  return all(libc.mallopt(ctypes.c_int(param), ctypes.c_int(value)) == 1
             for param, value in settings)
