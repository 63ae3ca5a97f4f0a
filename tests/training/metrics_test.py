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


def test_truncate_drops_a_cut_off_row_and_keeps_the_rest(tmp_path):
  path = tmp_path / "m.jsonl"
  rows = [json.dumps({"epoch": e}) + "\n" for e in (1, 2, 3)]
  path.write_text("garbage\n" + "".join(rows) + '[1]\n{"epoch": "x"}\n' + rows[2][:5])
  metrics.truncate_jsonl(str(path), 2)
  assert path.read_text() == rows[0] + rows[1]


def test_check_finite_names_epoch_and_step():
  metrics.check_finite(0.3, what="train/loss", epoch=1, step=5)
  with pytest.raises(FloatingPointError, match=r"epoch 3 \(step 17\)"):
    metrics.check_finite(float("nan"), what="train/loss", epoch=3, step=17)


def _strict_loads(text):
  """json.loads that refuses NaN and Infinity (not JSON, though Python writes them)."""
  def refuse(name):
    raise ValueError(f"not strict JSON: {name}")
  return json.loads(text, parse_constant=refuse)


def test_non_finite_scalars_are_written_as_null(tmp_path):
  writer = metrics.MetricWriter(str(tmp_path))
  writer.write_scalars(3, {"epoch": 1, "valid/rmse": float("nan"),
                           "valid/ndcg@10": float("inf"), "train/loss": 0.5})
  writer.close()
  row = _strict_loads((tmp_path / "metrics.jsonl").read_text())
  assert row == {"step": 3, "epoch": 1, "valid/rmse": None, "valid/ndcg@10": None,
                 "train/loss": 0.5}


def test_results_of_empty_parts_are_null_in_strict_json(tmp_path):
  results = {"test/rmse": float("nan"), "test/mae": float("nan"), "test/count": 0,
             "valid/rmse": float("nan"), "best_epoch": 2, "seconds_per_epoch": 0.5,
             "split": {"test": {"ratings": 0}}, "test/ndcg@10": float("nan")}
  out = metrics.finish_results(results, str(tmp_path))
  written = _strict_loads((tmp_path / "results.json").read_text())
  assert written == out
  assert out["test/rmse"] is None and out["valid/rmse"] is None and out["test/ndcg@10"] is None
  assert out["split"] == {"test": {"ratings": 0}} and out["test/count"] == 0
  assert not (tmp_path / "results.json.tmp").exists()


def test_a_non_finite_rmse_on_a_non_empty_test_part_is_an_error(tmp_path):
  with pytest.raises(FloatingPointError, match=r"test/rmse became nan on the 25 test ratings"):
    metrics.finish_results({"test/rmse": float("nan"), "test/count": 25}, str(tmp_path))
  assert not (tmp_path / "results.json").exists()


def test_summary_line_says_n_a_for_a_metric_that_does_not_exist():
  common = {"best_epoch": 2, "seconds_per_epoch": 0.25}
  assert metrics.summary_line({**common, "test/rmse": 0.9, "test/mae": 0.7,
                               "valid/rmse": 0.95}) == (
      "test RMSE 0.9000  MAE 0.7000  (best epoch 2, valid RMSE 0.9500, 0.25 s/epoch)")
  assert metrics.summary_line({**common, "test/rmse": None, "test/mae": None,
                               "valid/rmse": None}) == (
      "test RMSE n/a (empty test part)  (best epoch 2, valid RMSE n/a, 0.25 s/epoch)")


def test_summary_line_says_how_many_test_ratings_are_cold_from_one_percent():
  common = {"best_epoch": 2, "seconds_per_epoch": 0.25, "test/rmse": 0.9,
            "test/mae": 0.7, "valid/rmse": 0.95, "test/count": 300}
  assert "cold" not in metrics.summary_line({**common, "test/cold_count": 2})
  assert metrics.summary_line({**common, "test/cold_count": 3}) == (
      "test RMSE 0.9000  MAE 0.7000  (3 of 300 test ratings cold: their user or item has "
      "no train rating, so they get the train means)  (best epoch 2, valid RMSE 0.9500, "
      "0.25 s/epoch)")


def test_observers_see_every_row_and_stop_a_run_cleanly(tmp_path):
  seen = []
  writer = metrics.MetricWriter(str(tmp_path))
  with metrics.observing(seen.append):
    writer.write_scalars(10, {"epoch": 1, "valid/rmse": 0.9})
    writer.write_scalars(20, {"epoch": 2, "valid/rmse": float("nan")})
  writer.write_scalars(30, {"epoch": 3})  # no observer any more
  assert seen == [{"step": 10, "epoch": 1, "valid/rmse": 0.9},
                  {"step": 20, "epoch": 2, "valid/rmse": None}]

  class Stop(Exception):
    pass

  def stop(row):
    raise Stop(row["epoch"])

  with metrics.observing(stop), pytest.raises(Stop):
    writer.write_scalars(40, {"epoch": 4})
  # the writer flushed and closed its files before the exception unwound the run
  rows = [json.loads(l) for l in (tmp_path / "metrics.jsonl").read_text().splitlines()]
  assert [r["epoch"] for r in rows] == [1, 2, 3, 4]
  writer.close()  # closing again does nothing
