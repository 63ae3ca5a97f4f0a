import json

import pytest

from autorec_jax.training import metrics

def test_writer_appends_jsonl_and_tensorboard(tmp_path):
  writer = metrics.MetricWriter(str(tmp_path))
  writer.write_hparams({"model.hidden": (1, 2), "seed": 0})
  writer.write_scalars(10, {"epoch": 1, "train/loss": 0.5})
  writer.write_scalars(20, {"epoch": 2, "train/loss": 0.25})
  writer.close()
  rows = [json.loads(l) for l in (tmp_path / "metrics.jsonl").read_text().splitlines()]
  assert rows == [{"step": 10, "epoch": 1, "train/loss": 0.5},
                  {"step": 20, "epoch": 2, "train/loss": 0.25}]
  events = list((tmp_path / "tensorboard").iterdir())
  assert events and events[0].stat().st_size > 0


def test_truncate_drops_epochs_after_the_checkpoint(tmp_path):
  path = tmp_path / "m.jsonl"
  path.write_text("".join(json.dumps({"epoch": e}) + "\n" for e in (1, 2, 3, 4)))
  metrics.truncate_jsonl(str(path), 2)
  assert [json.loads(l)["epoch"] for l in path.read_text().splitlines()] == [1, 2]
  metrics.truncate_jsonl(str(tmp_path / "missing.jsonl"), 1)  # no file: nothing to do


def test_check_finite_names_epoch_and_step():
  metrics.check_finite(0.3, what="train/loss", epoch=1, step=5)
  with pytest.raises(FloatingPointError, match=r"epoch 3 \(step 17\)"):
    metrics.check_finite(float("nan"), what="train/loss", epoch=3, step=17)
