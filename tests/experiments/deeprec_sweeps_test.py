"""The DeepRec sweep script: its points, commands, resume logic, tables and plots.

Nothing here trains: runs are fake workdirs (metrics.jsonl, results.json) and the
subprocess runner is replaced by a function that writes them.
"""

import json
import math
import os

import pytest

from autorec_jax.config import checks as config_checks
from experiments import deeprec_sweeps as ds
from experiments import report
from tests import conftest

DATASET = str(conftest.REPO / "configs" / "movielens_1m.py") + ":user"


def _point(sweep, name):
  return next(p for p in ds.SWEEPS[sweep].points if p.name == name)


def _merged(sweep, name, epochs=3):
  return ds.point_overrides(ds.SWEEPS[sweep], _point(sweep, name), epochs)


_parse = conftest.parse_config_flags


def _fake_run(workdir, valid, *, train=None, finished=True, params=1234, error=None):
  """Writes what autorec_jax.main leaves in a workdir, with the given valid RMSEs."""
  os.makedirs(workdir, exist_ok=True)
  train = train or [1.0 - 0.05 * i for i in range(len(valid))]
  with open(os.path.join(workdir, "metrics.jsonl"), "w") as f:
    for i, (v, t) in enumerate(zip(valid, train), 1):
      f.write(json.dumps({"epoch": i, "train/loss": t * t, "valid/rmse": v,
                          "perf/epoch_secs": 0.5}) + "\n")
  if finished:
    best = min(range(len(valid)), key=lambda i: valid[i])
    results = {"test/rmse": valid[best] + 0.001, "valid/rmse": valid[best],
               "best_epoch": best + 1, "epochs_run": len(valid), "seconds_per_epoch": 0.5,
               "num_params": params}
    with open(os.path.join(workdir, "results.json"), "w") as f:
      json.dump(results, f)
  if error:
    with open(os.path.join(workdir, report.ERROR_FILE), "w") as f:
      f.write(error + "\n")


# --- the points of each sweep ------------------------------------------------------


def test_sweeps_cover_the_papers_experiments():
  assert list(ds.SWEEPS) == ["activations", "depth", "width", "dropout", "refeed", "tied"]
  for sweep in ds.SWEEPS.values():
    names = [p.name for p in sweep.points]
    assert len(names) == len(set(names)), sweep.name


def test_activation_points():
  sweep = ds.SWEEPS["activations"]
  assert len(sweep.points) == 14
  for orientation in ("user", "item"):
    for act in ("selu", "elu", "lrelu", "sigmoid", "relu", "relu6", "tanh"):
      m = _merged("activations", f"{orientation}_{act}")
      assert m["model.orientation"] == orientation and m["model.activation"] == act
      assert m["model.hidden"] == "(128,128)"
      assert m["model.output_activation"] == str(act not in ("sigmoid", "tanh"))
      assert m["optim.name"] == "adam" and m["optim.schedule"] == "constant"


def test_depth_points():
  for orientation in ("user", "item"):
    for depth in range(1, 7):
      m = _merged("depth", f"{orientation}_{2 * depth}layers")
      assert m["model.hidden"] == "(" + ",".join(["128"] * depth) + ("," if depth == 1 else "") + ")"
      assert m["model.orientation"] == orientation and m["model.activation"] == "selu"


def test_width_dropout_refeed_tied_points():
  assert [_merged("width", p.name)["model.hidden"] for p in ds.SWEEPS["width"].points] == [
      "(128,)", "(256,)", "(512,)", "(1024,)"]
  assert [_merged("dropout", p.name)["model.dropout"]
          for p in ds.SWEEPS["dropout"].points] == ["0.0", "0.5", "0.65", "0.8"]
  assert {_merged("dropout", p.name)["model.hidden"]
          for p in ds.SWEEPS["dropout"].points} == {"(512,512,1024)"}
  refeed = [_merged("refeed", p.name) for p in ds.SWEEPS["refeed"].points]
  assert [(m["optim.learning_rate"], m["train.refeed_steps"]) for m in refeed] == [
      ("0.001", "0"), ("0.001", "1"), ("0.005", "0"), ("0.005", "1")]
  for m in refeed:
    assert (m["optim.name"], m["optim.momentum"], m["model.dropout"]) == ("sgd", "0.9", "0.8")
  tied = [_merged("tied", p.name) for p in ds.SWEEPS["tied"].points]
  assert [(m["model.hidden"], m["model.dropout"], m["model.tied"]) for m in tied] == [
      ("(512,)", "0.0", "False"), ("(512,)", "0.0", "True"),
      ("(512,512,1024)", "0.8", "False"), ("(512,512,1024)", "0.8", "True")]


@pytest.mark.filterwarnings("ignore:the load_module:DeprecationWarning")  # ml_collections
def test_every_point_parses_as_autorec_flags_and_validates():
  """Each command's overrides name real fields with values of the right type."""
  for sweep in ds.SWEEPS.values():
    for point in sweep.points:
      argv = ds.point_command(sweep, point, dataset_config=DATASET, runs_dir="r", epochs=7)
      cfg = _parse(argv)
      config_checks.validate(cfg)
      assert cfg.train.num_epochs == 7 and cfg.train.batch_size == 128
      assert cfg.optim.weight_decay == 0.0 and not cfg.train.progress_bar
      merged = ds.point_overrides(sweep, point, 7)
      assert cfg.model.hidden == tuple(eval(merged["model.hidden"]))  # pylint: disable=eval-used
      assert cfg.model.dropout == float(merged["model.dropout"])
      assert cfg.model.tied == (merged["model.tied"] == "True")
      assert cfg.train.refeed_steps == int(merged["train.refeed_steps"])
      assert cfg.optim.learning_rate == float(merged["optim.learning_rate"])


def test_command_workdir_and_extra_overrides_last():
  sweep = ds.SWEEPS["refeed"]
  point = _point("refeed", "lr0.005_rf")
  argv = ds.point_command(sweep, point, dataset_config="configs/netflix_full.py",
                          runs_dir="runs/x", epochs=5,
                          extra={"data.path": "/d/nf", "optim.momentum": "0.5"})
  assert argv[:5] == ["python", "-m", "autorec_jax.main", "--config=configs/netflix_full.py",
                      "--workdir=runs/x/netflix_full/refeed/lr0.005_rf"]
  assert argv[-1] == "--config.data.path=/d/nf"  # a new field comes last
  # an extra value for a field the sweep sets replaces it (one flag, the extra's value)
  assert [a for a in argv if a.startswith("--config.optim.momentum=")] == [
      "--config.optim.momentum=0.5"]
  assert "--config.train.num_epochs=5" in argv
  assert ds.dataset_tag("configs/movielens_1m.py:user") == "movielens_1m_user"
  assert ds.sweep_command(sweep) == "python experiments/deeprec_sweeps.py --sweep=refeed"
  assert ds.sweep_command(sweep, dataset_config="configs/netflix_full.py", epochs=100,
                          extra={"data.path": "/d"}) == (
      "python experiments/deeprec_sweeps.py --sweep=refeed "
      "--dataset-config=configs/netflix_full.py --epochs=100 --config.data.path=/d")


def test_parse_args():
  args, extra = ds.parse_args(["--sweep=width,tied", "--config.data.path=/x=y"])
  assert [s.name for s in args.sweeps] == ["width", "tied"] and extra == {"data.path": "/x=y"}
  _, extra = ds.parse_args(["--sweep=width", "--config.optim.learning_rate=0.01"])
  assert extra == {"optim.learning_rate": "0.01"}  # width does not vary the lr
  args, _ = ds.parse_args(["--sweep=all"])
  assert len(args.sweeps) == 6
  assert [p.name for p in ds.select_points(ds.SWEEPS["depth"], "user_*,item_2layers")] == [
      "user_2layers", "user_4layers", "user_6layers", "user_8layers", "user_10layers",
      "user_12layers", "item_2layers"]
  for bad in (["--sweep=nope"], ["--sweep=width", "--bogus"], ["--sweep=width", "--epochs=0"],
              ["--sweep=width", "--points=user_*"],
              ["--sweep=refeed", "--config.optim.learning_rate=0.01"]):
    with pytest.raises(SystemExit):
      ds.parse_args(bad)


# --- running, resuming, failures -------------------------------------------------------


def test_dry_run_prints_commands_runs_nothing(tmp_path, capsys, monkeypatch):
  monkeypatch.chdir(tmp_path)  # the default results dir is relative: it must stay empty
  runs = str(tmp_path / "runs")
  sweep = ds.SWEEPS["width"]
  _fake_run(ds.point_workdir(sweep, sweep.points[0], runs, ds.DEFAULT_DATASET_CONFIG),
            [1.0, 0.9, 0.95])

  def runner(argv, workdir):
    raise AssertionError("dry run must not run anything")

  assert ds.main(["--sweep=width", f"--runs-dir={runs}", "--epochs=3", "--dry-run"],
                 runner=runner) == 0
  lines = capsys.readouterr().out.strip().splitlines()
  assert len(lines) == 4
  assert lines[0].startswith("# done: python -m autorec_jax.main")
  assert lines[1].startswith("python -m autorec_jax.main") and "h256" in lines[1]
  assert "'--config.model.hidden=(256,)'" in lines[1]
  assert not os.path.exists(tmp_path / "experiments")
  ds.main(["--sweep=width", f"--runs-dir={runs}", "--epochs=3", "--dry-run",
           "--points=h1024,h5*"], runner=runner)
  lines = capsys.readouterr().out.strip().splitlines()
  assert len(lines) == 2 and "/h512 " in lines[0] and "/h1024 " in lines[1]


def test_run_skips_finished_points_records_and_retries_failures(tmp_path, capsys,
                                                                monkeypatch):
  monkeypatch.setattr(ds, "build_plot", lambda sweep, path, **kw: open(path, "w").close())
  runs, results = str(tmp_path / "runs"), str(tmp_path / "results")
  sweep = ds.SWEEPS["tied"]
  workdirs = [ds.point_workdir(sweep, p, runs, ds.DEFAULT_DATASET_CONFIG)
              for p in sweep.points]
  _fake_run(workdirs[0], [1.0, 0.9])  # finished already
  _fake_run(workdirs[1], [1.0])  # finished, but with fewer epochs than asked: rerun
  calls = []
  fail = {"h512-512-1024_dp0.8_free"}

  def runner(argv, workdir):
    calls.append(os.path.basename(workdir))
    assert f"--workdir={workdir}" in argv
    if os.path.basename(workdir) in fail:
      _fake_run(workdir, [1.1, float("nan")], finished=False)
      return 1, "error: train/loss is nan at epoch 2"
    _fake_run(workdir, [1.0, 0.95])
    return 0, ""

  argv = ["--sweep=tied", f"--runs-dir={runs}", f"--results-dir={results}", "--epochs=2"]
  assert ds.main(argv, runner=runner) == 1
  assert calls == ["h512_tied", "h512-512-1024_dp0.8_free", "h512-512-1024_dp0.8_tied"]
  assert "FAILED (error: train/loss is nan at epoch 2)" in capsys.readouterr().out
  error_file = os.path.join(workdirs[2], report.ERROR_FILE)
  assert open(error_file).read().strip() == "error: train/loss is nan at epoch 2"
  table = open(os.path.join(results, "tied.md")).read()
  assert "failed: error: train/loss is nan at epoch 2" in table

  calls.clear()
  fail.clear()
  assert ds.main(argv, runner=runner) == 0
  assert calls == ["h512-512-1024_dp0.8_free"]
  assert not os.path.exists(error_file)


# --- tables and plots ------------------------------------------------------------------


def test_table_from_fake_workdirs(tmp_path):
  runs = str(tmp_path / "runs")
  sweep = ds.SWEEPS["dropout"]
  wd = [ds.point_workdir(sweep, p, runs, "configs/movielens_1m.py:user") for p in sweep.points]
  _fake_run(wd[0], [1.0, 0.9, 0.93], params=5374586)
  _fake_run(wd[1], [1.2, 1.05], finished=False)  # killed mid-run
  _fake_run(wd[2], [1.1, float("nan")], finished=False, error="error: loss not finite")
  text = ds.build_table(sweep, dataset_config="configs/movielens_1m.py:user", runs_dir=runs,
                        epochs=3)
  assert text.startswith("# Dropout on the code (DeepRec figure 4) on movielens_1m_user")
  assert "Adam, lr 1e-3" in text and "3 epochs per point" in text
  rows = [l for l in text.splitlines() if l.startswith("| dp")]
  assert len(rows) == 4
  cells = [c.strip() for c in rows[0].strip("|").split(" | ")]
  assert cells[:7] == ["dp0.0", "`model.dropout=0.0`", "0.9000", "0.9010", "2 / 3", "0.50",
                       "5,374,586"]
  assert cells[7].startswith("`python -m autorec_jax.main --config=configs/movielens_1m.py:user")
  assert "--config.model.dropout=0.0" in cells[7] and "--config.train.num_epochs=3" in cells[7]
  assert rows[1].split(" | ")[2:5] == ["1.0500", "not run", "2 / 2"]
  assert rows[2].split(" | ")[2:5] == ["1.1000", "failed: error: loss not finite", "1 / 2"]
  assert rows[3].split(" | ")[2:7] == ["—", "not run", "—", "—", "—"]


def test_write_report_writes_png(tmp_path):
  pytest.importorskip("matplotlib")
  runs, results = str(tmp_path / "runs"), str(tmp_path / "results")
  for name in ("activations", "width"):
    sweep = ds.SWEEPS[name]
    for i, p in enumerate(sweep.points):
      wd = ds.point_workdir(sweep, p, runs, ds.DEFAULT_DATASET_CONFIG)
      _fake_run(wd, [1.0 - 0.01 * i, 0.95, 0.97 if i else 50.0])  # one curve blows up
    md, png = ds.write_report(sweep, dataset_config=ds.DEFAULT_DATASET_CONFIG, runs_dir=runs,
                              results_dir=results, epochs=3)
    assert md.endswith(f"{name}.md") and os.path.exists(md)
    with open(png, "rb") as f:
      assert f.read(8) == b"\x89PNG\r\n\x1a\n"


def test_report_helpers(tmp_path):
  assert report.markdown_table(["a", "b"], [["x|y", 1]]) == (
      "| a | b |\n|---|---|\n| x\\|y | 1 |\n")
  with pytest.raises(ValueError, match="2 cells, header has 1"):
    report.markdown_table(["a"], [["1", "2"]])
  assert report.fmt(None) == report.fmt(float("nan")) == "—"
  assert report.fmt(1234567) == "1,234,567" and report.fmt(0.912345) == "0.9123"
  wd = tmp_path / "run"
  wd.mkdir()
  (wd / "metrics.jsonl").write_text(
      '{"epoch": 1, "valid/rmse": 1.0}\n{"epoch": 2, "valid/rmse": NaN}\n{"epoch": 3, "val')
  run = report.read_run(str(wd))
  assert len(run.metrics) == 2 and not run.finished and run.error is None
  assert run.best_valid() == (1, 1.0)
  epochs, values = run.series("valid/rmse")
  assert epochs == [1, 2] and math.isnan(values[1])
  assert report.read_run(str(tmp_path / "missing")).metrics == []


def test_run_sweep_runs_only_selected_points(tmp_path):
  calls = []

  def runner(argv, workdir):
    calls.append(os.path.basename(workdir))
    _fake_run(workdir, [1.0])
    return 0, ""

  failed = ds.run_sweep(ds.SWEEPS["tied"], dataset_config=DATASET, runs_dir=str(tmp_path),
                        epochs=1, runner=runner, points="h512_*")
  assert failed == [] and calls == ["h512_free", "h512_tied"]
