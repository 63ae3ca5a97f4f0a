"""A factorization run's fitted factors on disk (workdir/checkpoints/best.npz)."""

from __future__ import annotations

import dataclasses
import io
import json
import os

import jax.numpy as jnp
import numpy as np

from autorec_jax.models import factorization as fz

BEST_FILE = os.path.join("checkpoints", "best.npz")


def save_factors(path: str, factors: fz.Factors, offsets: fz.Offsets, meta: dict) -> None:
  """Writes factors, offsets and a JSON `meta` to `path` (.npz) atomically."""
  os.makedirs(os.path.dirname(path), exist_ok=True)
  buf = io.BytesIO()
  arrays = {f"{prefix}.{f.name}": np.asarray(getattr(obj, f.name))
            for prefix, obj in (("factors", factors), ("offsets", offsets))
            for f in dataclasses.fields(obj)}
  np.savez(buf, meta=np.array(json.dumps(meta)), **arrays)
  tmp = path + ".tmp"
  with open(tmp, "wb") as f:
    f.write(buf.getvalue())
  os.replace(tmp, path)


def load_factors(path: str) -> tuple[fz.Factors, fz.Offsets, dict]:
  """Reads what `save_factors` wrote."""
  with np.load(path) as z:
    def group(prefix):
      return {k[len(prefix):]: jnp.asarray(z[k]) for k in z.files if k.startswith(prefix)}
    return (fz.Factors(**group("factors.")), fz.Offsets(**group("offsets.")),
            json.loads(str(z["meta"])))
