"""The user documentation stays in step with the code and stays a user guide.

- docs/configs.md names every config field of `base_config()` and nothing else (in
  its "## Field reference" section a field is a markdown table row that starts with
  `` | `group.field` | ``);
- README.md stays short (at most 200 lines);
- README.md, docs/, the package's and the configs' Python files do not narrate how
  they were developed.
"""

from __future__ import annotations

import pathlib
import re

from ml_collections import config_dict

from autorec_jax.config.schema import base_config

REPO = pathlib.Path(__file__).resolve().parents[2]
FIELD_ROW = re.compile(r"^\|\s*`([A-Za-z0-9_.]+)`\s*\|")
NARRATION = re.compile(r"session|the day before|slower today", re.IGNORECASE)
README_MAX_LINES = 200
REFERENCE_HEADING = "\n## Field reference\n"


def leaf_fields(cfg: config_dict.ConfigDict, prefix: str = "") -> set[str]:
  """The dotted names of every non-group field of `cfg` (placeholders included)."""
  names = set()
  for key in cfg.keys():
    value = cfg[key]
    if isinstance(value, config_dict.ConfigDict):
      names |= leaf_fields(value, f"{prefix}{key}.")
    else:
      names.add(f"{prefix}{key}")
  return names


def documented_fields(text: str) -> list[str]:
  """The field names of the table rows in the "## Field reference" section."""
  section = text[text.index(REFERENCE_HEADING):]
  return [m.group(1) for line in section.splitlines() if (m := FIELD_ROW.match(line))]


def test_leaf_fields_walks_groups_and_placeholders():
  names = leaf_fields(base_config())
  assert {"seed", "data.path", "stacked.outer.num_epochs", "optim.grad_clip_norm",
          "eval.relevance_threshold"} <= names
  assert "data" not in names and "stacked.outer" not in names


def test_config_reference_names_every_field_and_nothing_else():
  text = (REPO / "docs" / "configs.md").read_text(encoding="utf-8")
  documented = documented_fields(text)
  duplicated = sorted({f for f in documented if documented.count(f) > 1})
  assert not duplicated, f"fields documented twice in docs/configs.md: {duplicated}"
  schema = leaf_fields(base_config())
  missing = sorted(schema - set(documented))
  extra = sorted(set(documented) - schema)
  assert not missing, f"fields of base_config() missing from docs/configs.md: {missing}"
  assert not extra, f"docs/configs.md documents fields base_config() lacks: {extra}"


def test_config_reference_lists_every_schedule():
  from autorec_jax.training import optim  # pylint: disable=import-outside-toplevel
  text = (REPO / "docs" / "configs.md").read_text(encoding="utf-8")
  row = next(line for line in text.splitlines() if line.startswith("| `optim.schedule` |"))
  for schedule in optim.SCHEDULES:
    assert f"`{schedule}`" in row, schedule


def test_readme_is_short():
  lines = (REPO / "README.md").read_text(encoding="utf-8").splitlines()
  assert len(lines) <= README_MAX_LINES, f"README.md has {len(lines)} lines"


def _checked_files():
  yield REPO / "README.md"
  yield from sorted(p for p in (REPO / "docs").rglob("*") if p.is_file())
  yield from sorted((REPO / "autorec_jax").rglob("*.py"))
  yield from sorted((REPO / "configs").rglob("*.py"))


def test_docs_and_code_do_not_narrate_their_development():
  hits = []
  for path in _checked_files():
    text = path.read_text(encoding="utf-8", errors="replace")
    for no, line in enumerate(text.splitlines(), 1):
      if NARRATION.search(line):
        hits.append(f"{path.relative_to(REPO)}:{no}: {line.strip()}")
  assert not hits, "\n".join(hits)
