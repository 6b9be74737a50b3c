"""The package layout shows the data flow: registry -> spec -> engine -> render / codegen / claims -> cli.

Every module of the package is parsed (``ast``, nothing imported) and each of its imports, lazy ones inside
functions included, is resolved to the subpackage it reaches.  The engine, the spec and the registry never
import a renderer, the code generators, the claim checker or the CLI.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "symbackprop"
TOP_LEVEL = {"__init__", "__main__", "_templates", "cli", "errors", "output", "progress"}
SUBPACKAGES = {"registry", "spec", "engine", "render", "codegen", "claims"}
DOWNSTREAM = {"render", "codegen", "claims", "cli"}


def module_name(path: Path) -> list[str]:
    parts = ["symbackprop", *path.relative_to(PACKAGE).with_suffix("").parts]
    return parts[:-1] if parts[-1] == "__init__" else parts


def area(target: list[str]) -> str | None:
    """``symbackprop.engine.derive`` -> ``engine``; ``symbackprop.cli`` -> ``cli``; outside -> None."""
    return target[1] if len(target) > 1 and target[0] == "symbackprop" else None


def imported(path: Path) -> set[str]:
    """The areas of the package that ``path`` imports (lazy imports included)."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name[:-1]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name.split(".") for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            base = base + (node.module.split(".") if node.module else [])
            targets = [base + [alias.name] for alias in node.names] if not node.module else [base]
        else:
            continue
        for target in targets:
            a = area(target)
            if a is not None and a != "__version__":
                found.add(a)
    return found


MODULES = sorted(PACKAGE.rglob("*.py"))
GRAPH = {p: imported(p) for p in MODULES}


def in_area(name: str) -> list[Path]:
    return [p for p in MODULES if area(module_name(p)) == name]


def test_every_module_lives_in_a_known_place():
    for p in MODULES:
        a = area(module_name(p))
        assert a is None and p.name == "__init__.py" or a in SUBPACKAGES | TOP_LEVEL, p


def test_the_resolver_sees_imports():
    """Guards the checks below against passing vacuously: known edges are found."""
    assert "spec" in GRAPH[PACKAGE / "engine" / "derive.py"]
    assert "registry" in GRAPH[PACKAGE / "spec" / "schema.py"]
    assert "engine" in GRAPH[PACKAGE / "render" / "documents.py"]
    assert {"codegen", "render", "engine", "claims"} <= GRAPH[PACKAGE / "cli.py"]


@pytest.mark.parametrize("low", ["engine", "spec", "registry"])
def test_core_imports_no_renderer_codegen_claims_or_cli(low):
    for p in in_area(low):
        assert not GRAPH[p] & DOWNSTREAM, f"{p.relative_to(PACKAGE)} imports {sorted(GRAPH[p] & DOWNSTREAM)}"


def test_registry_imports_neither_spec_nor_engine():
    for p in in_area("registry"):
        assert not GRAPH[p] & {"spec", "engine"}, p.relative_to(PACKAGE)


def test_spec_imports_no_engine():
    for p in in_area("spec"):
        assert "engine" not in GRAPH[p], p.relative_to(PACKAGE)


def test_notebook_display_is_attached_without_a_back_import():
    import symbackprop

    assert symbackprop.Derivation._repr_markdown_.__module__ == "symbackprop.render.notebook"
    assert symbackprop.Derivation._repr_latex_.__module__ == "symbackprop.render.notebook"
