"""Tests for autorec_jax.native.host_memory: the malloc settings keep large blocks in the heap."""

import json
import platform
import subprocess
import sys

import pytest

from autorec_jax.native import host_memory  # Allocates and frees a 64 MiB array six times (above glibc's largest adaptive mmap

# threshold, 32 MiB, so by default each one is a fresh mmap that page-faults) and
# reports the minor page faults of the last five.
_PROBE = r"""
import json, resource, sys
import numpy as np
from autorec_jax.native import host_memory

tuned = host_memory.tune_malloc() if sys.argv[1] == "tune" else False
def faults():
  return resource.getrusage(resource.RUSAGE_SELF).ru_minflt
counts = []
for _ in range(6):
  before = faults()
  a = np.ones(16 << 20, np.float32)
  del a
  counts.append(faults() - before)
print(json.dumps({"tuned": tuned, "faults": counts[1:]}))
"""


def _probe(mode: str) -> dict:
  out = subprocess.run([sys.executable, "-c", _PROBE, mode], capture_output=True, text=True,
                       check=True).stdout
  return json.loads(out.strip().splitlines()[-1])


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="mallopt is glibc's")
def test_tuned_process_reuses_large_blocks_without_page_faults():
  tuned = _probe("tune")
  assert tuned["tuned"] is True
  # 64 MiB of fresh pages is >= 32 faults even with 2 MiB transparent huge pages.
  assert sum(tuned["faults"]) < 20, tuned


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="mallopt is glibc's")
def test_default_process_faults_on_every_large_block():
  # The behaviour tune_malloc exists to remove: each fresh mmap faults its pages in.
  assert min(_probe("default")["faults"]) >= 32


def test_opt_out_leaves_malloc_alone(monkeypatch):
  monkeypatch.setenv(host_memory.ENV_VAR, "0")
  assert host_memory.tune_malloc() is False
