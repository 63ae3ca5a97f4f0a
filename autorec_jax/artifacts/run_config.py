"""The resolved config a run saves in its workdir (config.json), written and read back."""

from __future__ import annotations

import json
import os

import jax
from ml_collections import config_dict

from autorec_jax.config.schema import base_config
from autorec_jax.data.errors import DataFormatError


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


def read_json(path: str, expected: str = "JSON"):
  """A JSON file's value; DataFormatError naming the file (and line) when it is not
  UTF-8 JSON (`expected` says what the file should hold)."""
  try:
    with open(path, encoding="utf-8") as f:
      return json.load(f)
  except json.JSONDecodeError as e:
    raise DataFormatError(path, e.lineno, f"expected {expected}, got invalid JSON at "
                          f"column {e.colno} ({e.msg})") from None
  except UnicodeDecodeError as e:
    raise DataFormatError(path, None, f"expected UTF-8 JSON, got the byte "
                          f"0x{e.object[e.start]:02x} at byte offset {e.start}") from None


def load_config(workdir: str) -> config_dict.ConfigDict:
  """The resolved config a run saved in `workdir/config.json`.

  Raises FileNotFoundError when `workdir` is missing, is not a folder, or holds no
  config.json, and DataFormatError naming the file (and line) when config.json is not
  UTF-8 JSON holding an object of config sections.
  """
  if not workdir:
    raise ValueError("expected a run's workdir, got an empty path")
  if not os.path.exists(workdir):
    raise FileNotFoundError(f"{workdir}: is not a run's workdir (no such folder)")
  if not os.path.isdir(workdir):
    raise FileNotFoundError(f"{workdir}: is not a run's workdir (it is a file; expected "
                            "the folder a run was trained in)")
  path = os.path.join(workdir, "config.json")
  if not os.path.isfile(path):
    raise FileNotFoundError(f"{path} not found: {workdir} is not a run's workdir")
  saved = read_json(path, "the run's config as JSON")
  defaults = base_config().to_dict()
  if not isinstance(saved, dict):
    raise DataFormatError(path, None, f"expected a JSON object of config sections, got "
                          f"{type(saved).__name__}")
  for key, value in saved.items():
    if isinstance(defaults.get(key), dict) and not isinstance(value, dict):
      raise DataFormatError(path, None, f"expected section {key!r} to be a JSON object, got "
                            f"{value!r:.60}")
  # Fields added to the schema after the run was saved take their defaults.
  return config_dict.ConfigDict(_merge(defaults, _tuples(saved)))


def typed_config(path: str) -> config_dict.ConfigDict:
  """The config saved in a config.json file, as `base_config()` with the saved values:
  typed like a config file's, so a config file can return it and `--config.x=v`
  overrides still apply (`python -m autorec_jax.main --config=` a file whose
  `get_config` returns this trains the saved run again).

  DataFormatError naming the file when it is not a JSON object of config sections
  or names fields this version does not have (a silently dropped field would change
  the run).
  """
  saved = read_json(path, "a run's config as JSON")
  if not isinstance(saved, dict):
    raise DataFormatError(path, None, f"expected a JSON object of config sections, got "
                          f"{type(saved).__name__}")
  cfg = base_config()
  known = set(flatten(cfg.to_dict()))
  values = flatten(saved)
  unknown = sorted(set(values) - known)
  if unknown:
    raise DataFormatError(path, None, f"names fields this version does not have: "
                          f"{', '.join(unknown[:8])}")
  cfg.update_from_flattened_dict(_tuples(values))
  return cfg


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
