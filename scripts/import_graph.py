"""Print the package-level import graph of symbackprop: which subpackage imports which.

    python scripts/import_graph.py            # one line per subpackage, lazy imports included
    python scripts/import_graph.py --modules  # one line per module

Every module is parsed with ``ast`` (nothing is imported).  Top-level modules (cli, errors, output,
progress, _templates, __init__) are shown under their own names.
"""

from __future__ import annotations

import argparse
import ast
from collections import defaultdict
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "symbackprop"
ORDER = ["registry", "spec", "engine", "render", "codegen", "claims", "cli", "__init__", "__main__",
         "errors", "output", "progress", "_templates"]


def module_name(path: Path) -> list[str]:
    parts = ["symbackprop", *path.relative_to(PACKAGE).with_suffix("").parts]
    return parts[:-1] if parts[-1] == "__init__" and len(parts) > 2 else parts


def _is_module(name: list[str]) -> bool:
    where = PACKAGE.joinpath(*name[1:])
    return where.with_suffix(".py").is_file() or where.is_dir()


def targets(path: Path) -> list[list[str]]:
    """Every ``symbackprop...`` name that ``path`` imports, resolved to an absolute dotted path."""
    package = ["symbackprop", *path.relative_to(PACKAGE).parent.parts]
    out = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out += [a.name.split(".") for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            base = base + (node.module.split(".") if node.module else [])
            out += [base + [a.name] if not node.module or _is_module(base + [a.name]) else base for a in node.names]
    return [t for t in out if len(t) > 1 and t[0] == "symbackprop" and t[1] != "__version__"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--modules", action="store_true", help="one line per module instead of per subpackage")
    args = ap.parse_args()
    edges: dict[str, set[str]] = defaultdict(set)
    for path in sorted(PACKAGE.rglob("*.py")):
        name = module_name(path)
        src = ".".join(name[1:]) if args.modules else name[1]
        edges.setdefault(src, set())
        for t in targets(path):
            dst = ".".join(t[1:3]) if args.modules else t[1]
            if dst != src:
                edges[src].add(dst)

    def key(n: str) -> tuple[int, str]:
        head = n.split(".")[0]
        return (ORDER.index(head) if head in ORDER else len(ORDER), n)

    width = max(len(n) for n in edges)
    for src in sorted(edges, key=key):
        print(f"{src:<{width}} -> {', '.join(sorted(edges[src], key=key)) or '(nothing)'}")


if __name__ == "__main__":
    main()
