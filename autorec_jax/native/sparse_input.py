"""The first and output layers of the autoencoder over the observed entries only (CPU).

A minibatch row holds ~150 ratings of 3,706 items (ML-1M users), so `x @ W` and its
weight gradient `x^T @ g` do ~25x more work than they need, and so do the output
layer's product and its two gradients when the loss only looks at the observed
entries. XLA:CPU's own sparse formulations (gather + segment_sum, BCOO) run slower
than the dense matmul they would replace (experiments/benchmark.py measures both),
so this module compiles six small native kernels (`kernels/sparse_input.cc`, XLA
FFI) on first use with the system C++ compiler, caches the library, and exposes them
as two differentiable ops over a batch given as `SparseRows` (its entry lists; the
dense [B, I] input is never built), and registers them as the model's sparse ops
(autorec_jax.models.sparse) when imported:

  sparse_input_matmul(x, w_IxH) == x.todense() @ w_IxH

with gradients for the entries' values and the weight (nonzero on the listed rows of
W only). The batcher lists every stored entry of a batch (`CSRBatcher(...,
entries=True)`), so no dense input crosses to the device at all.

  sparse_output_matmul(h_BxH, v_IxH, c_I, row_E, col_E, count)
      == (h_BxH @ v_IxH.T + c_I)[row_E, col_E]   (0 past count)

the output layer where a loss over the observed entries needs it, with dense
gradients for h, v and c computed from the entries alone (O(E * H) work instead of
O(B * I * H)).

`model.input_path=sparse` selects them (one CPU device; a clear error where the
compiler is missing); `auto`, the default, selects them where they can run and the
train matrix is at most AUTO_MAX_DENSITY full, else dense. On one ML-1M batch of the
DeepRec benchmark model the first layer's forward and weight gradient measured
1.3-1.4 ms against 6.1-6.5 ms dense, and the output layer's forward and gradients
1.7-1.8 ms against 6.7-7.9 ms (docs/performance.md; dated measurements in
experiments/results/speed.md). The rest of a step is the middle layers and
parameter-sized memory traffic (gradients, optimizer: see
autorec_jax/native/fused_sgd.py).
"""

from __future__ import annotations

import ctypes
import functools
import hashlib
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
import time

import jax
import jax.numpy as jnp
from flax import struct

from autorec_jax.models import sparse as sparse_ops
from autorec_jax.models.sparse import INPUT_PATHS, SparseRows  # pylint: disable=unused-import

SOURCE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "kernels",
                      "sparse_input.cc")
SOURCE_NAME = "native/kernels/sparse_input.cc"  # as the build messages name it
TARGETS = {"forward": "AutorecSparseInputForward",
           "weight_grad": "AutorecSparseInputWeightGrad",
           "input_grad": "AutorecSparseInputInputGrad",
           "output_forward": "AutorecSparseOutputForward",
           "output_backward": "AutorecSparseOutputBackward",
           "output_backward_no_kernel": "AutorecSparseOutputBackwardNoKernel",
           # The optimizer's updates, built into the same library (autorec_jax.native.fused_sgd).
           "sgd_momentum": "AutorecSgdMomentum",
           "sgd_momentum_entries": "AutorecSgdMomentumEntries"}
# `auto` takes the sparse path at or below this share of stored entries: ML-1M (4%)
# and Netflix (1.1%) steps take 30-57% less time sparse; per multiply-add the kernels
# cost ~4-8x a dense product (2 ms for 4% of the work of a 6-8 ms one), so they stop
# paying near 15-25% and 10% keeps a margin.
AUTO_MAX_DENSITY = 0.10
# -fopenmp-simd lets the dot products' reductions vectorize (no OpenMP runtime).
_FLAGS = ("-O3", "-march=native", "-fopenmp-simd", "-shared", "-fPIC", "-std=c++17", "-w")


class KernelUnavailable(RuntimeError):
  """The native kernels could not be built or loaded here (the message says why, in
  one line)."""


def cache_dir() -> str:
  """Where built libraries are kept: $AUTOREC_CACHE_DIR, else ~/.cache/autorec_jax."""
  root = os.environ.get("AUTOREC_CACHE_DIR") or os.path.join(
      os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "autorec_jax")
  return os.path.join(root, "kernels")


def _cpu_model() -> str:
  try:
    with open("/proc/cpuinfo", encoding="utf-8") as f:
      return next((l for l in f if l.startswith("model name")), platform.processor())
  except OSError:
    return platform.processor()


def _library_path(compiler: str) -> str:
  with open(SOURCE, "rb") as f:
    source = f.read()
  key = hashlib.sha256(b"\0".join([
      source, jax.__version__.encode(), compiler.encode(), " ".join(_FLAGS).encode(),
      platform.machine().encode(), _cpu_model().encode()])).hexdigest()[:16]
  return os.path.join(cache_dir(), f"sparse_input_{key}.so")


def _say(text: str) -> None:
  """One line to stderr: the kernels' first build takes tens of seconds, and a failure
  to build or load them makes CPU training slower (the process reports it once:
  register() does not retry)."""
  sys.stderr.write(f"autorec_jax: {text}\n")
  sys.stderr.flush()


def _home_relative(path: str) -> str:
  home = os.path.expanduser("~")
  return "~" + path[len(home):] if home != "~" and path.startswith(home + os.sep) else path


def _first_error(output: str) -> str:
  """The compiler's first error line (else its last line), for a one-line message."""
  lines = [l.strip() for l in output.splitlines() if l.strip()]
  line = next((l for l in lines if "error" in l), lines[-1] if lines else "no output")
  return line if len(line) <= 300 else line[:297] + "..."


def build() -> str:
  """Compiles the kernels unless a cached build exists; returns the library path.

  A compile prints one line to stderr, what it builds and how long it took (or why it
  failed); a cached build prints nothing; a build that cannot start (no compiler, no
  writable cache) prints why. Failures raise KernelUnavailable with the same one-line
  reason; a failed compile's full output is kept next to the cache (the reason names
  the file).
  """
  compiler = os.environ.get("CXX") or shutil.which("g++") or shutil.which("c++")
  if not compiler:
    error = KernelUnavailable("no C++ compiler found (set CXX or install g++) to build "
                              "the native CPU kernels; use model.input_path=dense")
    _say(str(error))
    raise error
  path = _library_path(compiler)
  if os.path.exists(path):
    return path
  folder = os.path.dirname(path)
  try:
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(suffix=".so", dir=folder)
  except OSError as e:
    error = KernelUnavailable(f"cannot write the native CPU kernels to {folder} "
                              f"({e.strerror}); set AUTOREC_CACHE_DIR to a writable "
                              "folder")
    _say(str(error))
    raise error from e
  os.close(fd)
  cmd = [compiler, *_FLAGS, f"-I{jax.ffi.include_dir()}", SOURCE, "-o", tmp]
  what = f"building the native CPU kernels ({SOURCE_NAME})"
  start = time.perf_counter()
  try:
    try:
      done = subprocess.run(cmd, capture_output=True, text=True, check=False)
      status, output = done.returncode, done.stderr
    except OSError as e:  # the compiler named by CXX cannot be run
      status, output = None, f"{compiler}: {e.strerror}"
    seconds = time.perf_counter() - start
    if status != 0:
      log = path[:-len(".so")] + ".log"
      try:
        with open(log, "w", encoding="utf-8") as f:
          f.write(" ".join(cmd) + "\n" + output)
        where = f"; the compiler's output is in {log}"
      except OSError:
        where = ""
      error = KernelUnavailable(f"building the native CPU kernels failed: "
                                f"{_first_error(output)}{where}")
      _say(f"{what} ... failed after {seconds:.1f} s: {error}")
      raise error
    os.replace(tmp, path)  # atomic: concurrent builders each install a complete file
  finally:
    if os.path.exists(tmp):
      os.remove(tmp)
  _say(f"{what} ... done in {seconds:.1f} s (cached in {_home_relative(folder)})")
  return path


# register()'s outcome in this process: None until it ran, then "" (registered) or
# the one-line reason the kernels cannot run (not retried: a failed build costs
# seconds and would fail again).
_registered: str | None = None
_register_lock = threading.Lock()


def register() -> None:
  """Builds (once) and registers the native kernels with XLA; raises
  KernelUnavailable where they cannot run.

  The outcome is remembered for the process: a failure is not retried, and every
  later call raises the same one-line reason.
  """
  global _registered  # pylint: disable=global-statement
  with _register_lock:
    if _registered is None:
      try:
        _register()
        _registered = ""
      except KernelUnavailable as e:
        _registered = str(e)
    if _registered:
      raise KernelUnavailable(_registered)


def _register() -> None:
  if jax.default_backend() != "cpu":
    raise KernelUnavailable(f"the native kernels run on CPU only, not on "
                            f"{jax.default_backend()}")
  path = build()
  try:
    library = ctypes.cdll.LoadLibrary(path)
    for symbol in TARGETS.values():
      jax.ffi.register_ffi_target(symbol, jax.ffi.pycapsule(getattr(library, symbol)),
                                  platform="cpu")
  except (OSError, AttributeError) as e:
    error = KernelUnavailable(f"cannot load the native CPU kernels from {path} ({e}); "
                              "delete it to rebuild")
    _say(str(error))
    raise error from e


def available() -> tuple[bool, str]:
  """(True, '') when the kernels can run here, else (False, the reason)."""
  try:
    register()
  except KernelUnavailable as e:
    return False, str(e)
  return True, ""


def _call(target: str, shape, *args):
  return jax.ffi.ffi_call(TARGETS[target], jax.ShapeDtypeStruct(shape, jnp.float32))(*args)


def sparse_input_matmul(x: SparseRows, w_IxH: jax.Array) -> jax.Array:
  """x @ w from x's listed entries (see the module docstring); float32 [B, H]."""
  return _input_matmul(x.val, w_IxH, x.row, x.col, x.count, x.shape[0])


@functools.partial(jax.custom_vjp, nondiff_argnums=(5,))
def _input_matmul(val_E, w_IxH, row_E, col_E, count, num_rows):
  register()
  return _call("forward", (num_rows, w_IxH.shape[1]), val_E.astype(jnp.float32), w_IxH,
               row_E, col_E, count)


def _fwd(val_E, w_IxH, row_E, col_E, count, num_rows):
  val_E = val_E.astype(jnp.float32)
  out = _input_matmul(val_E, w_IxH, row_E, col_E, count, num_rows)
  return out, (val_E, w_IxH, row_E, col_E, count)


def _bwd(num_rows, res, g_BxH):
  del num_rows
  val_E, w_IxH, row_E, col_E, count = res
  g_BxH = g_BxH.astype(jnp.float32)
  dval = _call("input_grad", val_E.shape, g_BxH, w_IxH, row_E, col_E, count)
  dw = _call("weight_grad", w_IxH.shape, val_E, g_BxH, row_E, col_E, count)
  return dval, dw, None, None, None


_input_matmul.defvjp(_fwd, _bwd)


@jax.custom_vjp
def sparse_output_matmul(h_BxH: jax.Array, v_IxH: jax.Array, c_I: jax.Array,
                         row_E: jax.Array, col_E: jax.Array, count: jax.Array) -> jax.Array:
  """(h @ v.T + c)[row[e], col[e]] for every listed entry e, 0 past `count`; float32.

  `v` is the output kernel stored items-major, [I, H] (a row per output unit, as the
  model stores it; a tied decoder's is the first encoder kernel). The gradients are
  dense in h and c and in v's listed items, the products only over the entries
  (O(E * H)); v's is not computed at all where v is a constant (stop_gradient: the
  model's deferred kernel gradients).
  """
  register()
  return jax.ffi.ffi_call(TARGETS["output_forward"],
                          jax.ShapeDtypeStruct(row_E.shape, jnp.float32))(
                              h_BxH.astype(jnp.float32), v_IxH, c_I, row_E, col_E, count)


@struct.dataclass
class _OutputResiduals:
  h_BxH: jax.Array
  v_IxH: jax.Array
  c_I: jax.Array
  row_E: jax.Array
  col_E: jax.Array
  count: jax.Array
  kernel_grad: bool = struct.field(pytree_node=False)


def _output_fwd(h_BxH, v_IxH, c_I, row_E, col_E, count):
  # symbolic_zeros: each argument comes with whether it is differentiated.
  args = [a.value for a in (h_BxH, v_IxH, c_I, row_E, col_E, count)]
  args[0] = args[0].astype(jnp.float32)
  return sparse_output_matmul(*args), _OutputResiduals(*args,
                                                       kernel_grad=v_IxH.perturbed)


def _output_bwd(res, g_E):
  h_BxH, v_IxH, c_I = res.h_BxH, res.v_IxH, res.c_I
  if isinstance(g_E, jax.custom_derivatives.SymbolicZero):
    g_E = jnp.zeros(res.row_E.shape, jnp.float32)
  args = (g_E.astype(jnp.float32), h_BxH, v_IxH, res.row_E, res.col_E, res.count)
  f32 = lambda a: jax.ShapeDtypeStruct(a.shape, jnp.float32)  # pylint: disable=unnecessary-lambda-assignment
  if not res.kernel_grad:
    dh, dc = jax.ffi.ffi_call(TARGETS["output_backward_no_kernel"],
                              (f32(h_BxH), f32(c_I)))(*args)
    return dh, None, dc, None, None, None
  dh, dv, dc = jax.ffi.ffi_call(TARGETS["output_backward"],
                                (f32(h_BxH), f32(v_IxH), f32(c_I)))(*args)
  return dh, dv, dc, None, None, None


sparse_output_matmul.defvjp(_output_fwd, _output_bwd, symbolic_zeros=True)


def resolve(input_path: str, *, num_devices: int, density: float | None = None
            ) -> tuple[str, str]:
  """(path to train with, why) for `model.input_path`; raises KernelUnavailable (or
  ValueError) when `sparse` is asked for and cannot run here.

  `auto` is `sparse` when the kernels can run (one CPU device, a compiler) and the
  train matrix's `density` (stored / all entries) is at most AUTO_MAX_DENSITY, else
  `dense`; it never fails.
  """
  if input_path not in INPUT_PATHS:
    raise ValueError(f"model.input_path={input_path!r} must be one of {INPUT_PATHS}")
  if input_path == "sparse":
    if num_devices != 1:
      raise KernelUnavailable(f"model.input_path=sparse needs a single device, not "
                              f"{num_devices}; use dense")
    ok, why = available()
    if not ok:
      raise KernelUnavailable(why)
    return "sparse", "asked for"
  if input_path == "dense":
    return "dense", "asked for"
  if num_devices != 1:
    return "dense", f"auto: {num_devices} devices (the kernels run on one)"
  if density is None:
    return "dense", "auto: density unknown"
  if density > AUTO_MAX_DENSITY:
    return "dense", f"auto: density {density:.4f} above {AUTO_MAX_DENSITY}"
  ok, why = available()
  if not ok:
    return "dense", f"auto: {why}"
  return "sparse", f"auto: density {density:.4f} <= {AUTO_MAX_DENSITY}"


# Importing this module makes the model's sparse products (autorec_jax.models.sparse)
# these kernels; they are built on first use.
sparse_ops.register("native CPU kernels", sparse_input_matmul, sparse_output_matmul)


if __name__ == "__main__":  # python -m autorec_jax.native.sparse_input: build and report
  print(build() if available()[0] else available()[1])
  sys.exit(0 if available()[0] else 1)
