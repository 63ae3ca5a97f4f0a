"""configs/strub_mary_2015.py and experiments/strub_mary_2015.py.

Every variant validates and follows the paper's recipe; the tiny variant runs through
`autorec_jax.main` on a synthetic csv; the experiment script's commands parse, its
resume logic and tables work on fake workdirs (nothing else trains here).
"""

import json
import math
import os
import subprocess
import sys

import pytest

from autorec_jax.config import checks as config_checks
from autorec_jax.models import registry as model_registry
from configs import strub_mary_2015 as sm_config
from experiments import report
from experiments import strub_mary_2015 as sm
from tests import conftest, synthetic

REPO = conftest.REPO
VARIANTS = [v + s for v in sm_config.VARIANTS for s in ("", "_e2e")]


# --- the config ----------------------------------------------------------------------


@pytest.mark.parametrize("variant", VARIANTS)
def test_every_variant_validates(variant):
  cfg = sm_config.get_config(variant)
  config_checks.validate(cfg)
  assert cfg.stacked.enabled is (not variant.endswith("_e2e"))


def test_docstring_has_a_runnable_command_and_unknown_variants_fail():
  assert "python -m autorec_jax.main" in sm_config.__doc__
  assert "configs/strub_mary_2015.py:ml1m_v" in sm_config.__doc__
  with pytest.raises(ValueError, match="unknown variant"):
    sm_config.get_config("ml1m_x")


@pytest.mark.parametrize("variant", ["ml1m_v", "ml1m_u", "jester_u", "jester_v"])
def test_paper_table_1_recipe(variant):
  cfg = sm_config.get_config(variant)
  m, o = cfg.model, cfg.optim
  assert (m.activation, m.kernel_init, m.output_activation) == ("tanh", "fan_in", False)
  assert cfg.preprocess.scale and cfg.preprocess.bias == "row"
  assert (o.name, o.momentum, o.schedule) == ("sgd", 0.8, "inverse_time")
  assert m.orientation == ("item" if variant.endswith("_v") else "user")
  assert cfg.data.num_folds == 10 and cfg.data.valid_fraction > 0
  assert cfg.data.name == ("jester" if variant.startswith("jester") else "movielens_1m")
  # Corruption and alpha/beta of table 1, per stage.
  outer, inner = cfg.stacked.outer, cfg.stacked.inner
  assert (outer.alpha, outer.beta, outer.masking, outer.salt_pepper) == (1.0, 0.8, 0.15, 0.05)
  assert (inner.alpha, inner.beta, inner.gaussian, inner.gaussian_std,
          inner.salt_pepper) == (1.0, 1.0, 0.8, 0.02, 0.1)
  assert (cfg.loss.alpha, cfg.loss.beta) == (1.2, 0.8)
  assert (cfg.noise.masking, cfg.noise.salt_pepper) == (0.15, 0.05)
  assert (outer.decay_rate, inner.decay_rate, o.decay_rate) == (0.1, 0.1, 0.2)


@pytest.mark.parametrize("variant, num_inputs, widths", [
    ("ml1m_v", 6040, (604, 503)),     # V-encoder: input = users
    ("ml1m_u", 3706, (371, 309)),     # U-encoder: input = movies
    ("jester_u", 100, (10, 8)),
    ("jester_v", 24938, (25, 17)),    # the paper's 1/1000 and 1/1500 for Jester's V
])
def test_layer_widths_are_fractions_of_the_input(variant, num_inputs, widths):
  cfg = sm_config.get_config(variant)
  assert model_registry.hidden_widths(cfg.model, num_inputs) == widths


@pytest.mark.parametrize("variant", ["ml1m_v", "ml1m_u", "jester_u", "jester_v"])
def test_end_to_end_variant_is_the_same_network_with_the_same_epoch_budget(variant):
  stacked, e2e = sm_config.get_config(variant), sm_config.get_config(variant + "_e2e")
  assert e2e.model.to_dict() == stacked.model.to_dict()
  assert e2e.optim.to_dict() == stacked.optim.to_dict()
  assert e2e.train.num_epochs == stacked.stacked.outer.num_epochs + stacked.train.num_epochs


def _run_main(workdir, data):
  cmd = [sys.executable, "-m", "autorec_jax.main", f"--config={sm.SM_CONFIG}:tiny",
         f"--workdir={workdir}", "--config.data.name=csv", f"--config.data.path={data}"]
  env = {**os.environ, "JAX_PLATFORMS": "cpu", "JAX_NUM_CPU_DEVICES": "1"}
  return subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)


def test_tiny_variant_runs_all_stages_through_main_then_gives_buckets(tmp_path):
  data = synthetic.write_ratings_csv(tmp_path / "r.csv")
  model = sm.Model("tiny", "tiny U-encoder", "synthetic", f"{sm.SM_CONFIG}:tiny")
  run = tmp_path / "runs" / "tiny" / "fold0"
  out = _run_main(run, data)
  assert out.returncode == 0, out.stderr[-3000:]
  assert "test RMSE" in out.stdout
  results = json.loads((run / "results.json").read_text())
  assert math.isfinite(results["test/rmse"]) and results["test/rmse"] < 2.0
  for stage in ("stage1_outer", "stage2_inner", "stage3_finetune"):
    assert (run / stage / "metrics.jsonl").exists(), stage
  # The cold-start view of the trained run: every test rating in exactly one bucket,
  # and the ratings-weighted bucket MSEs add up to the run's own test RMSE.
  tables = sm.compute_buckets(str(tmp_path / "runs"), 0, models=(model,))
  for by in ("user", "item"):
    rows = tables[by]["tiny U-encoder"]
    assert sum(b["count"] for b in rows) == results["test/count"]
    sse = sum(b["rmse"] ** 2 * b["count"] for b in rows if b["count"])
    assert math.sqrt(sse / results["test/count"]) == pytest.approx(results["test/rmse"],
                                                                   rel=1e-4)
  assert "### by item activity" in sm.buckets_markdown(tables)


# --- the experiment script --------------------------------------------------------------


_parse = conftest.parse_config_flags


def _all_models():
  return list(sm.TABLE2) + [e2e for _, e2e in sm.LAYERWISE] + [
      sm.fig2_model(p) for p in sm.FIG2_POINTS]


@pytest.mark.parametrize("model", _all_models(), ids=lambda m: m.name)
def test_every_command_parses_into_a_valid_config_on_its_fold(model, monkeypatch):
  monkeypatch.chdir(REPO)
  cfg = _parse(sm.command(model, 2, "runs"))
  config_checks.validate(cfg)
  assert cfg.data.fold == 2 and cfg.data.num_folds == 10 and cfg.data.seed == 0
  # Same folds and validation part everywhere, except the row that trains on it too.
  want_valid = 0.0 if model.name == "ml1m_v_full" else 0.02
  assert cfg.data.valid_fraction == want_valid and not cfg.train.progress_bar


def test_fig2_points_follow_the_outer_recipe_and_the_papers_ratio(monkeypatch):
  monkeypatch.chdir(REPO)
  outer = sm_config.get_config(sm.FIG2_VARIANT).stacked.outer
  by_name = {p.name: p for p in sm.FIG2_POINTS}
  assert by_name["balanced"].ratio == pytest.approx(1 / 3)
  assert by_name["beta0"].ratio == math.inf and by_name["clean"].ratio == 0.0
  cfg = _parse(sm.command(sm.fig2_model(by_name["balanced"]), 0, "runs"))
  assert not cfg.stacked.enabled and len(cfg.model.hidden_fractions) == 1
  assert cfg.optim.learning_rate == outer.learning_rate
  assert cfg.optim.weight_decay == outer.weight_decay
  assert (cfg.noise.masking, cfg.noise.salt_pepper) == (0.1875, 0.0625)  # 75% / 25% of 0.25
  assert cfg.train.num_epochs == sm.FIG2_EPOCHS


def _fake(wd, *, test, valid, mae=0.7, secs=10.0, stacked=False, curve=None):
  """What a finished autorec_jax.main run leaves in its workdir."""
  os.makedirs(wd, exist_ok=True)
  curve = curve or [valid + 0.01, valid]
  with open(os.path.join(wd, "metrics.jsonl"), "w") as f:
    for i, v in enumerate(curve, 1):
      f.write(json.dumps({"epoch": i, "train/loss": 0.1, "valid/rmse": v}) + "\n")
  results = {"test/rmse": test, "test/mae": mae, "valid/rmse": valid, "best_epoch": 2,
             "epochs_run": len(curve), "train_seconds": secs, "seconds_per_epoch": 1.0}
  if stacked:
    results["stages"] = {"outer": {"train_seconds": 5.0}}
    for stage, n in (("stage1_outer", 3), ("stage2_inner", 1), ("stage3_finetune", 2)):
      os.makedirs(os.path.join(wd, stage))
      with open(os.path.join(wd, stage, "metrics.jsonl"), "w") as f:
        f.writelines(json.dumps({"epoch": e}) + "\n" for e in range(1, n + 1))
  with open(os.path.join(wd, "results.json"), "w") as f:
    json.dump(results, f)


def _cells(table, label):
  line = next(l for l in table.splitlines() if label in l)
  return [c.strip() for c in line.strip("|").split("|")]


def test_table2_mean_and_sample_std_over_folds(tmp_path):
  runs = str(tmp_path)
  v = sm.ML1M_V
  for fold, (test, mae) in enumerate([(0.83, 0.65), (0.84, 0.66), (0.85, 0.67)]):
    _fake(sm.workdir(runs, v, fold), test=test, valid=test, mae=mae, stacked=True)
  table = sm.table2_markdown(runs, [0, 1, 2])
  cells = _cells(table, "V-encoder")
  assert cells[2] == "0.840 ± 0.004"  # the paper's
  assert cells[3] == "0.8400 ± 0.0100" and cells[5] == "0.6600 ± 0.0100"
  assert cells[6] == "0,1,2" and cells[7] == "15"  # 10 s fine-tuning + 5 s outer
  u_cells = _cells(table, "U-encoder (stacked, n")
  assert u_cells[3] == "—" and u_cells[6] == "none (of 3)"


def test_layerwise_table_reads_epochs_per_stage_and_times(tmp_path):
  runs = str(tmp_path)
  stacked, e2e = sm.LAYERWISE[1]
  _fake(sm.workdir(runs, stacked, 0), test=0.84, valid=0.83, stacked=True)
  _fake(sm.workdir(runs, e2e, 0), test=0.86, valid=0.85, curve=[0.9, 0.87, 0.85], secs=7.0)
  with open(os.path.join(sm.workdir(runs, e2e, 0), sm.WALL_FILE), "w") as f:
    json.dump({"wall_seconds": 42.0}, f)
  table = sm.layerwise_markdown(runs, [0])
  lw, e2e_cells = ([c.strip() for c in l.strip("|").split("|")]
                   for l in table.splitlines() if "V-encoder" in l)
  assert lw[1] == "layer-wise + fine-tuning"
  assert lw[2] == "0.8400 ± 0.0000" and lw[5] == "3+1+2" and lw[6] == "15"
  assert e2e_cells[1] == "end to end" and e2e_cells[2] == "0.8600 ± 0.0000"
  assert e2e_cells[5] == "3" and e2e_cells[6] == "7" and e2e_cells[7] == "42"


def test_fig2_table_and_verdict(tmp_path):
  runs = str(tmp_path)
  curves = {"clean": [0.90, 0.88, 0.87, 0.865, 0.86], "balanced": [0.89, 0.86, 0.85, 0.85, 0.85],
            "denoise_heavy": [0.9, 0.89, 0.88, 0.87, 0.87], "beta0": [0.95, 0.93, 0.92, 0.91, 0.9]}
  for p in sm.FIG2_POINTS:
    c = curves[p.name]
    _fake(sm.workdir(runs, sm.fig2_model(p), 0), test=min(c), valid=min(c), curve=c)
  table = sm.fig2_markdown(runs, 0)
  bal = _cells(table, "nu=0.25, alpha=1, beta=1 ")
  assert bal[1] == "0.33" and bal[2] == "0.8900" and bal[4] == "0.8500"
  assert bal[5] == "—" and bal[6] == "0.8500 (epoch 3)"
  assert _cells(table, "beta=0 ")[1] == "∞" and _cells(table, "nu=0, ")[1] == "—"
  verdict = sm.fig2_verdict(runs, 0)
  assert "improved the best validation RMSE (0.8500 vs 0.8600" in verdict
  assert "at epoch 2 instead of 5" in verdict and "(beta=0) gave 0.9000" in verdict
  png = tmp_path / "fig2.png"
  sm.fig2_plot(str(png), runs, 0)
  assert png.stat().st_size > 1000


def test_buckets_markdown_puts_models_side_by_side():
  rows = lambda r: [{"bucket": "0-4", "rows": 2, "count": 3, "rmse": r, "mae": r / 2},
                    {"bucket": "5+", "rows": 0, "count": 0, "rmse": float("nan"),
                     "mae": float("nan")}]
  text = sm.buckets_markdown({"user": {"U-encoder": rows(1.0), "V-encoder": rows(0.5)}})
  assert "### by user activity" in text
  assert _cells(text, "0-4") == ["0-4", "2", "3", "1.0000", "0.5000", "0.5000", "0.2500"]
  assert _cells(text, "5+")[3:] == ["—"] * 4


def test_main_runs_missing_jobs_once_then_reuses_them(tmp_path, monkeypatch):
  monkeypatch.chdir(REPO)
  calls = []

  def runner(argv, wd):
    calls.append(wd)
    _fake(wd, test=0.85, valid=0.85, curve=[0.9, 0.86, 0.85])
    return 0

  args = [f"--runs-dir={tmp_path / 'runs'}", f"--results-dir={tmp_path / 'out'}",
          "--parts=table2,layerwise,fig2", "--folds=0,1"]
  assert sm.main(args, runner=runner) == 0
  assert len(calls) == len(sm.TABLE2) * 2 + len(sm.LAYERWISE) * 2 + len(sm.FIG2_POINTS)
  assert len(set(calls)) == len(calls)
  md = (tmp_path / "out" / "strub_mary_2015.md").read_text()
  assert "## Table 2" in md and "## Layer-wise" in md and "## Figure 2" in md
  assert (tmp_path / "out" / "strub_mary_2015_fig2.png").exists()
  assert all(os.path.exists(os.path.join(wd, sm.WALL_FILE)) for wd in calls)
  calls.clear()
  assert sm.main(args, runner=runner) == 0
  assert calls == []  # every workdir holds results.json: nothing reruns


def test_failed_run_is_reported_and_dry_run_trains_nothing(tmp_path, capsys):
  m = sm.ML1M_U
  assert not sm.ensure_run(m, 0, str(tmp_path), runner=lambda argv, wd: 3)
  assert "FAILED (exit 3" in capsys.readouterr().out
  assert not sm.ensure_run(m, 1, str(tmp_path), dry_run=True,
                           runner=lambda argv, wd: pytest.fail("ran"))
  printed = capsys.readouterr().out
  assert "python -m autorec_jax.main" in printed and "--config.data.fold=1" in printed


def test_unknown_part_is_an_error(tmp_path):
  with pytest.raises(SystemExit):
    sm.main(["--parts=table3", f"--runs-dir={tmp_path}"])


def test_report_reads_runs_through_the_shared_reader(tmp_path):
  wd = sm.workdir(str(tmp_path), sm.ML1M_U, 0)
  _fake(wd, test=0.86, valid=0.85)
  assert report.read_run(wd).finished
  assert sm.train_seconds(wd) == 10.0 and sm.wall_seconds(wd) is None
