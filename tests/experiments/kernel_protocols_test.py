"""experiments/kernel_protocols.py: the protocol's config (no validation part, the
split's seed), one table row per model and split, bad split seeds refused. (The runs
themselves are full ML-1M trainings; the suite checks the script around them.)"""

import sys

import pytest

from experiments import kernel_protocols as kp


def test_run_trains_on_the_whole_train_part_of_the_given_split(tmp_path, monkeypatch):
  seen = {}

  def fake_trainer(cfg, workdir):
    seen.update(valid=cfg.data.valid_fraction, seed=cfg.data.seed, workdir=workdir,
                kind=cfg.model.kind)
    return {"test/rmse": 0.8, "test/mae": 0.6}

  monkeypatch.setattr(kp.registry, "select", lambda cfg: fake_trainer)
  results = kp.run("glocal_k", str(tmp_path), 2)
  assert seen == {"valid": 0.0, "seed": 2, "kind": "kernel",
                  "workdir": str(tmp_path / "protocol_glocal_k_split2")}
  assert results["wall_seconds"] >= 0
  kp.run("kernelnet", str(tmp_path))
  assert seen["seed"] == 0 and seen["workdir"] == str(tmp_path / "protocol_kernelnet")


def test_one_row_per_model_and_split(tmp_path, monkeypatch):
  calls = []

  def fake_run(variant, out, split_seed=0):
    calls.append((variant, split_seed))
    return {"test/rmse": 0.82 + split_seed / 1000, "test/mae": 0.64, "wall_seconds": 60.0}

  monkeypatch.setattr(kp, "run", fake_run)
  results = tmp_path / "table.md"
  monkeypatch.setattr(sys, "argv", ["kernel_protocols.py", f"--out={tmp_path}",
                                    "--variants=glocal_k", "--split_seeds=0,3",
                                    f"--results={results}"])
  kp.main()
  assert calls == [("glocal_k", 0), ("glocal_k", 3)]
  text = results.read_text()
  assert "--split_seeds=0,3" in text
  assert "| GLocal-K (Han et al. 2021), `:glocal_k` | 0 | 0.8200 | 0.6400 | 1.0 min |" in text
  assert "| GLocal-K (Han et al. 2021), `:glocal_k` | 3 | 0.8230 |" in text


@pytest.mark.parametrize("seeds", ["x", "", "-1", "1,,2.5"])
def test_bad_split_seeds_are_one_line(tmp_path, monkeypatch, capsys, seeds):
  monkeypatch.setattr(kp, "run", lambda *a: pytest.fail("ran with bad seeds"))
  monkeypatch.setattr(sys, "argv", ["kernel_protocols.py", f"--out={tmp_path}",
                                    f"--split_seeds={seeds}"])
  with pytest.raises(SystemExit) as exit_info:
    kp.main()
  assert exit_info.value.code == 2
  assert "--split_seeds=" in capsys.readouterr().err
