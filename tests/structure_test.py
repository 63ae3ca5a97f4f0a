"""The package's shape: no import cycle, serving stands without training, short modules."""

from __future__ import annotations

import ast
import pathlib

from tests import conftest

PACKAGE = conftest.REPO / "autorec_jax"
# Modules outside data/ stay short enough to read top to bottom.
MAX_LINES = 400


def _module_name(path: pathlib.Path) -> str:
  rel = path.relative_to(conftest.REPO).with_suffix("")
  parts = list(rel.parts)
  return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports() -> dict[str, set[str]]:
  """{module: the package modules it imports, at any nesting level}."""
  graph = {}
  for path in PACKAGE.rglob("*.py"):
    me = _module_name(path)
    base = me.split(".") if path.name == "__init__.py" else me.split(".")[:-1]
    targets = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
      if isinstance(node, ast.Import):
        targets |= {a.name for a in node.names}
      elif isinstance(node, ast.ImportFrom):
        mod = node.module or ""
        if node.level:
          mod = ".".join(base[:len(base) - node.level + 1] + ([mod] if mod else []))
        targets.add(mod)
        targets |= {f"{mod}.{a.name}" for a in node.names}
    graph[me] = {t for t in targets if t.startswith("autorec_jax")}
  modules = set(graph)
  return {m: {t for t in ts if t in modules and t != m} for m, ts in graph.items()}


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
  state: dict[str, int] = {}  # 1: on the stack, 2: done

  def visit(node, path):
    state[node] = 1
    for nxt in sorted(graph[node]):
      if state.get(nxt) == 1:
        return path[path.index(nxt):] + [nxt]
      if nxt not in state:
        found = visit(nxt, path + [nxt])
        if found:
          return found
    state[node] = 2
    return None

  for start in sorted(graph):
    if start not in state:
      found = visit(start, [start])
      if found:
        return found
  return None


def test_the_import_graph_has_no_cycle():
  graph = _imports()
  assert len(graph) > 40, "the package was not found"
  assert _cycle(graph) is None, " -> ".join(_cycle(graph))


def test_a_cycle_is_found_when_there_is_one():
  assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
  assert _cycle({"a": {"b"}, "b": set()}) is None


def test_serving_never_imports_training():
  graph = _imports()
  serving = [m for m in graph if m.startswith("autorec_jax.serving")]
  assert serving
  bad = {m: sorted(t for t in graph[m] if t.startswith("autorec_jax.training"))
         for m in serving}
  assert not {m: t for m, t in bad.items() if t}


def test_only_training_and_main_reach_the_native_plugin():
  graph = _imports()
  for module, targets in graph.items():
    if module.startswith("autorec_jax.native"):
      continue
    native = [t for t in targets if t.startswith("autorec_jax.native")]
    assert not native or module == "autorec_jax.training.fast_path", (module, native)


def test_modules_outside_data_are_short():
  long = {str(p.relative_to(conftest.REPO)): n for p in PACKAGE.rglob("*.py")
          if "data" not in p.relative_to(PACKAGE).parts[:1]
          and (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_LINES}
  assert not long


def test_library_modules_define_no_absl_flags():
  """Only the command-line tools' own FlagValues and main.py's flags exist, so any
  absl application can import the library."""
  offenders = []
  for path in PACKAGE.rglob("*.py"):
    if path.name == "main.py":
      continue
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
      if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
          and node.func.attr.startswith("DEFINE")
          and not any(k.arg == "flag_values" for k in node.keywords)):
        offenders.append(f"{path.relative_to(conftest.REPO)}:{node.lineno}")
  assert not offenders
