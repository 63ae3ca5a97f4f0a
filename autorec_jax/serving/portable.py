r"""The trained model as one portable file: jax.export (StableHLO) with its parameters.

`export(model)` (or `autorec_jax.load(workdir).export()`, or the command line tool
`python -m autorec_jax.serving.export --workdir=runs/movielens_1m_user`) writes
DIR/export/model.jax (the serialized `jax.export.Exported`, parameters baked
in as constants, lowered for CPU and CUDA) and DIR/export/model.json (what the
function takes and the original ids of its columns). Running it needs only jax and
numpy, not this package:

  import json, jax, numpy as np
  fn = jax.export.deserialize(open("DIR/export/model.jax", "rb").read())
  meta = json.load(open("DIR/export/model.json"))
  pred_BxN = fn.call(ratings_BxN, mask_BxN)   # float32 [b, N], any b

A row is what the model reads: for a user-based model a user's ratings of the N items
`meta["column_ids"]` (so a new user's row gives their predictions: fold-in); for an
item-based one an item's ratings by the N training users. `mask` marks the observed
entries (1.0) and the output holds predicted ratings, with the run's preprocessing,
cold-entry fallback and clipping inside (api.make_rows_fn): a training row gives the
live model's predictions.
"""

from __future__ import annotations

import contextlib
import json
import os

import jax
import jax.numpy as jnp
import numpy as np

from autorec_jax.runtime import cli

EXPORT_DIR = "export"
MODEL_FILE = "model.jax"
META_FILE = "model.json"


def _ids(values: np.ndarray) -> list:
  return [v.item() if hasattr(v, "item") else v for v in values]


def export(model, directory: str | None = None, *, overwrite: bool = False,
           platforms: tuple[str, ...] = ("cpu", "cuda")) -> str:
  """Writes `model` (an api.Model) under `directory` (default: workdir/export).

  A directory that holds model.jax or model.json already is refused
  (FileExistsError) unless `overwrite`. Both files are written to temporary names
  first and renamed into place only when both are complete, so a failed export
  leaves a previous one as it was. Returns the path of the serialized function.
  """
  predictor = model.predictor
  if getattr(model, "global_kernel", False):
    raise ValueError("this run is GLocal-K: its predictions convolve the whole rating "
                     "matrix, so no row-wise function can be exported; serve it with "
                     "predict or recommend")
  if directory is None:
    if model.workdir is None:
      raise ValueError("export needs a directory for a model built without a workdir")
    directory = os.path.join(model.workdir, EXPORT_DIR)
  cli.check_output_dir(directory, (MODEL_FILE, META_FILE), overwrite=overwrite,
                       flag="directory", hint="pass overwrite=True")
  rows_fn = model.rows_fn(clip=True)
  params = jax.device_get(model.params)
  num_cols = model.num_columns

  def predict_rows(ratings_BxN, mask_BxN):
    return rows_fn(params, ratings_BxN, mask_BxN)

  (batch,) = jax.export.symbolic_shape("b")
  spec = jax.ShapeDtypeStruct((batch, num_cols), jnp.float32)
  exported = jax.export.export(jax.jit(predict_rows), platforms=platforms)(spec, spec)
  path = os.path.join(directory, MODEL_FILE)
  blob = bytes(exported.serialize())
  rows, cols = (("user", model.item_ids) if model.orientation == "user"
                else ("item", model.user_ids))
  meta = {
      "format": "jax.export (serialized StableHLO); call with jax.export.deserialize",
      "signature": f"(ratings f32[b, {num_cols}], mask f32[b, {num_cols}]) -> "
                   f"predicted ratings f32[b, {num_cols}]",
      "orientation": model.orientation,
      "row": f"one {rows}'s ratings, column j holding the rating of column_ids[j]",
      "column_ids": _ids(cols),
      "rating_scale": list(model.rating_scale),
      "workdir": os.path.abspath(model.workdir) if model.workdir else None,
      "checkpoint_step": int(predictor.step),
      "checkpoint_epoch": int(predictor.epoch),
      "platforms": list(platforms),
      "jax_version": jax.__version__,
  }
  with contextlib.ExitStack() as both:  # each renamed into place when both are written
    both.enter_context(cli.atomic_output(path, "wb")).write(blob)
    both.enter_context(cli.atomic_output(os.path.join(directory, META_FILE), "wb")).write(
        json.dumps(meta).encode("utf-8"))
  return path


def load_exported(directory: str):
  """(callable, meta) of an export directory; uses only jax, json and numpy."""
  with open(os.path.join(directory, MODEL_FILE), "rb") as f:
    exported = jax.export.deserialize(bytearray(f.read()))
  with open(os.path.join(directory, META_FILE), encoding="utf-8") as f:
    meta = json.load(f)
  return exported.call, meta
