"""The resolved config a run saves in its workdir (config.json), written and read back."""

from __future__ import annotations

import json
import os

import jax
from ml_collections import config_dict

from autorec_jax.config.schema import base_config


def config_json(cfg) -> str:
  """The resolved config as the JSON saved in a workdir."""
  return cfg.to_json_best_effort(indent=2, sort_keys=True)


def write_config(cfg, workdir: str) -> None:
  """Saves the resolved config as workdir/config.json (process 0, atomically, since
  other processes read it to check a resumed run)."""
  if jax.process_index() != 0:
    return
  tmp = os.path.join(workdir, "config.json.tmp")
  with open(tmp, "w", encoding="utf-8") as f:
    f.write(config_json(cfg))
  os.replace(tmp, os.path.join(workdir, "config.json"))


def _tuples(value):
  if isinstance(value, dict):
    return {k: _tuples(v) for k, v in value.items()}
  if isinstance(value, list):
    return tuple(_tuples(v) for v in value)
  return value


def load_config(workdir: str) -> config_dict.ConfigDict:
  """The resolved config a run saved in `workdir/config.json`."""
  path = os.path.join(workdir, "config.json")
  if not os.path.exists(path):
    raise FileNotFoundError(f"{path} not found: {workdir} is not a run's workdir")
  with open(path, encoding="utf-8") as f:
    saved = _tuples(json.load(f))
  # Fields added to the schema after the run was saved take their defaults.
  return config_dict.ConfigDict(_merge(base_config().to_dict(), saved))


def _merge(defaults: dict, saved: dict) -> dict:
  out = dict(defaults)
  for k, v in saved.items():
    out[k] = _merge(defaults[k], v) if isinstance(v, dict) and isinstance(
        defaults.get(k), dict) else v
  return out


def flatten(d: dict, prefix: str = "") -> dict:
  """{"a": {"b": 1}} -> {"a.b": 1}."""
  out = {}
  for k, v in d.items():
    if isinstance(v, dict):
      out.update(flatten(v, f"{prefix}{k}."))
    else:
      out[f"{prefix}{k}"] = v
  return out
