import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from autorec_jax.serving import api
from autorec_jax.serving import export
from tests import conftest, trained_runs

# Runs in a fresh interpreter: only jax, numpy and the exported files.
_CONSUMER = textwrap.dedent("""
    import json, sys
    import jax, numpy as np
    directory, arrays = sys.argv[1], np.load(sys.argv[2])
    with open(directory + "/model.jax", "rb") as f:
      exported = jax.export.deserialize(bytearray(f.read()))
    meta = json.load(open(directory + "/model.json"))
    got = np.asarray(exported.call(arrays["ratings"], arrays["mask"]))
    assert got.shape == arrays["expected"].shape, got.shape
    assert len(meta["column_ids"]) == got.shape[1]
    diff = float(np.max(np.abs(got - arrays["expected"])))
    loaded = sorted(m for m in sys.modules if m.startswith("autorec_jax"))
    assert "autorec_jax.training.loop" not in sys.modules and not loaded, loaded
    print(json.dumps({"max_abs_diff": diff}))
""")


@pytest.fixture(scope="module", params=["user", "item"])
def exported(request, tmp_path_factory):
  model = api.load(str(trained_runs.tiny_run(tmp_path_factory, request.param)))
  directory = tmp_path_factory.mktemp(f"export_{request.param}")
  return model, directory, model.export(str(directory))


def _consume(directory, tmp_path, ratings, mask, expected) -> float:
  arrays = tmp_path / "arrays.npz"
  np.savez(arrays, ratings=ratings.astype(np.float32), mask=mask.astype(np.float32),
           expected=expected.astype(np.float32))
  script = tmp_path / "consumer.py"
  script.write_text(_CONSUMER)
  proc = subprocess.run([sys.executable, str(script), str(directory), str(arrays)],
                        cwd=tmp_path, capture_output=True, text=True, timeout=120)
  assert proc.returncode == 0, proc.stderr[-3000:]
  return json.loads(proc.stdout.strip().splitlines()[-1])["max_abs_diff"]


def test_exported_function_gives_the_live_predictions(exported, tmp_path):
  model, directory, path = exported
  assert path == str(directory / export.MODEL_FILE)
  rows = model._train_rows  # raw train ratings, rows of the orientation
  ratings, mask = rows.toarray(), np.zeros(rows.shape)
  mask[np.repeat(np.arange(rows.shape[0]), np.diff(rows.indptr)), rows.indices] = 1.0
  # The live model: Predictor.predict on every (user, item) pair, laid out as rows.
  users, items = np.meshgrid(np.arange(len(model.user_ids)), np.arange(len(model.item_ids)),
                             indexing="ij")
  live = model.predictor.predict(users.ravel(), items.ravel()).reshape(users.shape)
  expected = live if model.orientation == "user" else live.T
  assert _consume(directory, tmp_path, ratings, mask, expected) <= 1e-5


def test_exported_user_model_folds_in_a_new_user(tmp_path_factory, tmp_path):
  """A user-based export takes a new user's row: fold_in's "encode" predictions."""
  model = api.load(str(trained_runs.tiny_run(tmp_path_factory, "user")))
  directory = tmp_path / "export"
  model.export(str(directory))
  items = np.flatnonzero(model.trained_items)[[0, 3, 5, 8]]
  new = model.fold_in(dict(zip(model.item_ids[items], [5.0, 1.0, 4.0, 3.0])),
                      method="encode")
  ratings = np.zeros((1, len(model.item_ids)))
  mask = np.zeros_like(ratings)
  ratings[0, items], mask[0, items] = [5.0, 1.0, 4.0, 3.0], 1.0
  assert _consume(directory, tmp_path, ratings, mask, new.predictions[None, :]) <= 1e-5


def test_metadata_names_the_columns(exported):
  model, directory, _ = exported
  meta = json.loads((directory / export.META_FILE).read_text())
  cols = model.item_ids if model.orientation == "user" else model.user_ids
  assert meta["column_ids"] == cols.tolist()
  assert meta["orientation"] == model.orientation
  assert meta["checkpoint_epoch"] == model.predictor.epoch
  assert meta["platforms"] == ["cpu", "cuda"]
  call, meta2 = export.load_exported(str(directory))
  assert meta2 == meta and callable(call)


def test_cli_writes_into_the_workdir(tmp_path_factory):
  workdir = trained_runs.tiny_run(tmp_path_factory, "user")
  proc = subprocess.run([sys.executable, "-m", "autorec_jax.serving.export", f"--workdir={workdir}"],
                        cwd=conftest.REPO, capture_output=True, text=True, timeout=180)
  assert proc.returncode == 0, proc.stderr[-2000:]
  assert (workdir / "export" / "model.jax").stat().st_size > 0
  assert (workdir / "export" / "model.json").exists()
  bad = subprocess.run([sys.executable, "-m", "autorec_jax.serving.export",
                        f"--workdir={workdir / 'nope'}"], cwd=conftest.REPO,
                       capture_output=True, text=True, timeout=120)
  assert bad.returncode == 1 and "not a run's workdir" in bad.stderr
  assert "Traceback" not in bad.stderr


def test_an_export_is_never_overwritten_without_asking(tmp_path_factory, tmp_path,
                                                       monkeypatch):
  workdir = trained_runs.tiny_run(tmp_path_factory, "item")
  model = api.load(str(workdir))
  directory = tmp_path / "export"
  directory.mkdir()
  (directory / export.META_FILE).write_text("{}")
  with pytest.raises(FileExistsError, match=rf"{directory}: holds model\.json already; pass "
                                            r"overwrite=True to replace them"):
    model.export(str(directory))
  assert (directory / export.META_FILE).read_text() == "{}"
  model.export(str(directory), overwrite=True)
  old = {n: (directory / n).read_bytes() for n in (export.MODEL_FILE, export.META_FILE)}
  # A write that fails half way leaves the previous export whole.
  real_replace = os.replace

  def replace(src, dst):
    if str(dst).endswith(export.MODEL_FILE):
      raise OSError(28, "No space left on device", src)
    real_replace(src, dst)

  monkeypatch.setattr(os, "replace", replace)
  with pytest.raises(OSError, match="No space left on device"):
    model.export(str(directory), overwrite=True)
  monkeypatch.undo()
  assert {n: (directory / n).read_bytes() for n in old} == old
  assert sorted(p.name for p in directory.iterdir()) == sorted(old)


def test_cli_refuses_an_existing_export(tmp_path_factory, tmp_path):
  workdir = trained_runs.tiny_run(tmp_path_factory, "item")
  directory = tmp_path / "export"
  directory.mkdir()
  (directory / export.MODEL_FILE).write_bytes(b"mine")
  cmd = [sys.executable, "-m", "autorec_jax.serving.export", f"--workdir={workdir}",
         f"--output={directory}"]
  proc = subprocess.run(cmd, cwd=conftest.REPO, capture_output=True, text=True, timeout=180)
  assert proc.returncode == 1
  assert proc.stderr.strip() == (f"error: {directory}: holds model.jax already; pass "
                                 "--overwrite to replace them")
  assert (directory / export.MODEL_FILE).read_bytes() == b"mine"
  proc = subprocess.run(cmd + ["--overwrite"], cwd=conftest.REPO, capture_output=True,
                        text=True, timeout=180)
  assert proc.returncode == 0, proc.stderr[-2000:]
  assert (directory / export.MODEL_FILE).stat().st_size > 100
