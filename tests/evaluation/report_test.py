import json
import subprocess
import sys

import pytest

from autorec_jax.data.errors import DataFormatError
from autorec_jax.evaluation import report
from tests import conftest, trained_runs

PNG = b"\x89PNG\r\n\x1a\n"


def _fake_run(root, name, *, orientation="item", epochs=4, finished=True, scale=False,
              data=None):
  workdir = root / name
  workdir.mkdir()
  config = {"data": data or {"name": "movielens_1m", "rating_min": None,
                             "rating_max": None},
            "model": {"orientation": orientation, "hidden": [500], "activation": "sigmoid",
                      "dropout": 0.5, "hidden_fractions": []},
            "preprocess": {"scale": scale}, "train": {"refeed_steps": 1}}
  (workdir / "config.json").write_text(json.dumps(config))
  rows = [{"epoch": e, "train/loss": 1.0 / e, "valid/rmse": 1.0 - 0.01 * e + (e == 4) * 0.05}
          for e in range(1, epochs + 1)]
  (workdir / "metrics.jsonl").write_text("\n".join(json.dumps(r) for r in rows) +
                                         "\n{\"epoch\": 5, \"trai")  # a cut line
  if finished:
    (workdir / "results.json").write_text(json.dumps({
        "test/rmse": 0.8311, "test/mae": 0.6527, "valid/rmse": 0.97, "best_epoch": 3,
        "epochs_run": epochs, "seconds_per_epoch": 0.94, "num_params": 6046540,
        "test/ndcg@10": 0.0412, "test/recall@10": 0.0234}))
  return workdir


def test_read_run_keeps_complete_lines(tmp_path):
  run = report.read_run(str(_fake_run(tmp_path, "a")))
  assert [m["epoch"] for m in run["metrics"]] == [1, 2, 3, 4]
  assert run["results"]["best_epoch"] == 3
  assert report.series(run, "valid/rmse")[0] == [1, 2, 3, 4]
  with pytest.raises(FileNotFoundError, match="not a run's workdir"):
    report.read_run(str(tmp_path / "missing"))


def test_markdown_table_rows(tmp_path):
  runs = [report.read_run(str(_fake_run(tmp_path, "done"))),
          report.read_run(str(_fake_run(tmp_path, "running", finished=False,
                                        orientation="user")))]
  text = report.markdown(runs)
  lines = text.strip().splitlines()
  assert len(lines) == 4 and lines[0].startswith("| run | data | model |")
  assert "| done | movielens_1m | item-based 500 sigmoid, dropout 0.5, re-feed 1 | 4 | 3 |" \
         " 0.9700 | 0.8311 | 0.6527 | 0.0412 | 0.0234 | 0.94 | 6,046,540 |" in text
  # The unfinished run: its best epoch and validation RMSE come from metrics.jsonl.
  assert "| running | movielens_1m | user-based 500 sigmoid" in text
  assert "| 4 (running) | 3 | 0.9700 | — | — | — | — | — | — |" in text


def test_generic_readers_are_labelled_by_their_file(tmp_path):
  csv = {"name": "csv", "path": "/data/my-shop/ratings_2024.csv.gz"}
  monti = {"name": "monti", "path": "~/douban/training_test_dataset.mat"}
  runs = [report.read_run(str(_fake_run(tmp_path, "c", data=csv))),
          report.read_run(str(_fake_run(tmp_path, "m", data=monti)))]
  text = report.markdown(runs)
  assert "| c | ratings_2024.csv.gz | item-based" in text
  assert "| m | training_test_dataset.mat | item-based" in text
  assert report.data_label({"data": {"name": "jester", "path": "/x/jester3.mat"}}) == \
      "jester"
  assert report.data_label({"data": {"name": "csv"}}) == "csv"  # no path recorded


def test_train_curve_scale():
  assert report.train_rmse_scale({"preprocess": {"scale": False}}) == 1.0
  assert report.train_rmse_scale({"preprocess": {"scale": True},
                                  "data": {"name": "movielens_1m"}}) == 2.0
  assert report.train_rmse_scale({"preprocess": {"scale": True},
                                  "data": {"name": "jester"}}) == 10.0
  assert report.train_rmse_scale({"preprocess": {"scale": True},
                                  "data": {"name": "csv", "rating_min": 1.0,
                                           "rating_max": 10.0}}) == 4.5


def test_write_report_makes_markdown_and_pngs(tmp_path, tmp_path_factory):
  runs = [str(_fake_run(tmp_path, "a")), str(_fake_run(tmp_path, "b", scale=True)),
          str(trained_runs.tiny_run(tmp_path_factory, "user"))]
  paths = report.write_report(runs, str(tmp_path / "out"))
  md, valid_png, tv_png = paths
  for png in (valid_png, tv_png):
    data = open(png, "rb").read()
    assert data[:8] == PNG and len(data) > 5000
  text = open(md, encoding="utf-8").read()
  assert "![validation RMSE per epoch](valid_rmse.png)" in text
  assert "| run |" in text and text.count("\n| ") >= 4


def test_cli(tmp_path):
  a, b = _fake_run(tmp_path, "a"), _fake_run(tmp_path, "b")
  out = tmp_path / "rep"
  proc = subprocess.run([sys.executable, "-m", "autorec_jax.evaluation.report", str(a), str(b),
                         f"--output={out}"], cwd=conftest.REPO, capture_output=True,
                        text=True, timeout=120)
  assert proc.returncode == 0, proc.stderr[-2000:]
  assert (out / "report.md").exists() and (out / "valid_rmse.png").exists()
  bad = subprocess.run([sys.executable, "-m", "autorec_jax.evaluation.report", str(tmp_path / "nope")],
                       cwd=conftest.REPO, capture_output=True, text=True, timeout=120)
  assert bad.returncode == 1 and "not a run's workdir" in bad.stderr
  none = subprocess.run([sys.executable, "-m", "autorec_jax.evaluation.report"], cwd=conftest.REPO,
                        capture_output=True, text=True, timeout=120)
  assert none.returncode == 2 and "usage" in none.stderr


def test_damaged_run_files_are_named(tmp_path):
  run = _fake_run(tmp_path, "a")
  (run / "config.json").write_text('{"data": {"name": "x",\n  "model" {}}')
  with pytest.raises(DataFormatError, match=rf"{run}/config\.json:2: expected JSON, got "
                                            r"invalid JSON at column \d+"):
    report.read_run(str(run))
  (run / "config.json").write_text("[1, 2]")
  with pytest.raises(DataFormatError, match=rf"{run}/config\.json: expected a JSON object"):
    report.read_run(str(run))
  run = _fake_run(tmp_path, "b")
  lines = (run / "metrics.jsonl").read_text().splitlines()
  lines[1] = lines[1][:10]  # a cut line that is not the last one
  (run / "metrics.jsonl").write_text("\n".join(lines) + "\n")
  with pytest.raises(DataFormatError, match=rf"{run}/metrics\.jsonl:2: expected a JSON object "
                                            "per line"):
    report.read_run(str(run))
  run = _fake_run(tmp_path, "c")
  (run / "metrics.jsonl").write_text('{"epoch": 1}\n{"valid/rmse": 1.0}\n{"epoch": 3}\n')
  with pytest.raises(DataFormatError, match=rf"{run}/metrics\.jsonl:2: expected a JSON object "
                                            "with an integer `epoch`"):
    report.read_run(str(run))
  (run / "metrics.jsonl").write_text('{"epoch": 1}\n')
  (run / "results.json").write_text('{"test/rmse": 0.8')
  with pytest.raises(DataFormatError, match=rf"{run}/results\.json:1: expected JSON"):
    report.read_run(str(run))


def test_cli_errors_are_one_line_and_reports_are_not_overwritten(tmp_path):
  a = _fake_run(tmp_path, "a")
  out = tmp_path / "rep"

  def cli(*args):
    return subprocess.run([sys.executable, "-m", "autorec_jax.evaluation.report", *map(str, args)],
                          cwd=conftest.REPO, capture_output=True, text=True, timeout=120)

  (tmp_path / "bad").mkdir()
  (tmp_path / "bad" / "config.json").write_text("{")
  proc = cli(a, tmp_path / "bad", f"--output={out}")
  assert proc.returncode == 1 and proc.stderr.strip().startswith(
      f"error: {tmp_path / 'bad' / 'config.json'}:1: expected JSON, got invalid JSON")
  assert len(proc.stderr.strip().splitlines()) == 1 and not out.exists()
  out.mkdir()
  (out / "report.md").write_text("my edited report\n")
  proc = cli(a, f"--output={out}")
  assert proc.returncode == 1 and proc.stderr.strip() == (
      f"error: {out}: holds report.md already; pass --overwrite to replace them")
  assert (out / "report.md").read_text() == "my edited report\n"
  proc = cli(a, f"--output={out}", "--overwrite")
  assert proc.returncode == 0, proc.stderr[-2000:]
  assert (out / "report.md").read_text().startswith("# Runs")
  assert sorted(p.name for p in out.iterdir()) == sorted(report.REPORT_FILES)
  proc = cli(a, f"--output={a / 'config.json'}")
  assert proc.returncode == 1 and proc.stderr.strip() == (
      f"error: --output={a / 'config.json'}: is a file; expected a folder")
