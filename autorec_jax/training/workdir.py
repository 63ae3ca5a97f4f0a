"""A run's workdir as training sees it: clearing a previous run, refusing to resume
a different one."""

from __future__ import annotations

import json
import os
import shutil

from autorec_jax.artifacts.run_config import config_json, flatten
from autorec_jax.config import checks as config_checks
from autorec_jax.config.schema import base_config


RUN_FILES = ("checkpoints", "metrics.jsonl", "results.json", "config.json", "tensorboard",
             "data.npz", "data_files.json")


def clear_workdir(workdir: str) -> None:
  """Deletes a previous run's files from `workdir` (and nothing else in it)."""
  for name in RUN_FILES:
    path = os.path.join(workdir, name)
    if os.path.isdir(path):
      shutil.rmtree(path)
    elif os.path.exists(path):
      os.remove(path)


def check_workdir(cfg, workdir: str) -> None:
  """Refuses to resume a workdir that holds a run of a different config.

  Only `train.num_epochs` may differ (to extend a finished run). A field the saved
  config lacks (added by a later version) counts as its default.
  """
  path = os.path.join(workdir, "config.json")
  if not os.path.exists(path):
    return
  with open(path, encoding="utf-8") as f:
    old = {**flatten(json.loads(config_json(base_config()))), **flatten(json.load(f))}
  new = flatten(json.loads(config_json(cfg)))
  diff = sorted(k for k in old.keys() | new.keys()
                if old.get(k) != new.get(k) and k != "train.num_epochs")
  if diff:
    raise config_checks.ConfigError(
        f"{workdir} holds a run with a different config ({', '.join(diff[:8])} differ); "
        "pass the same config to resume it, use another --workdir, or --overwrite to "
        "delete that run")
