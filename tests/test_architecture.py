"""The layout's rules, read from the source with `ast` (docs/architecture.md).

Every import counts, wherever it stands (module level, inside a function,
under `TYPE_CHECKING`): an import moved into a function still ties the two
modules together, it only hides the circle from the interpreter. Importing
`a.b.c` runs `a/__init__` and `a/b/__init__` first, so a module depends on
the packages above what it imports and above itself: a package's
`__init__` that imports its own modules is a circle too.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("app", "routing", "sms")
# Who may import the web layers: the web app itself and what serves or builds it.
MAY_IMPORT_WEB = ("app.api", "app.console", "app.cli", "app.web")


def modules_under(root: Path, packages: Iterable[str]) -> dict[str, Path]:
    """Dotted module name → file, for every .py file of `packages` under `root`."""
    found: dict[str, Path] = {}
    for package in packages:
        for path in sorted((root / package).rglob("*.py")):
            parts = list(path.relative_to(root).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


def _ancestors(name: str) -> list[str]:
    parts = name.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts))]


def import_graph(modules: dict[str, Path]) -> dict[str, set[str]]:
    """Each module → the modules of `modules` it makes Python import."""

    def known(name: str) -> str | None:
        while name and name not in modules:
            name = name.rpartition(".")[0]
        return name or None

    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        targets: set[str] = set(_ancestors(name))
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            imported: list[str] = []
            if isinstance(node, ast.Import):
                imported = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    up = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join([*up, base] if base else up)
                # `from a.b import c` imports a.b, and a.b.c too when c is a module.
                imported = [base] + [f"{base}.{alias.name}" for alias in node.names]
            for target in imported:
                resolved = known(target)
                if resolved is not None:
                    targets.add(resolved)
                    targets.update(_ancestors(resolved))
        targets &= modules.keys()
        targets.discard(name)
        graph[name] = targets
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(start: str) -> None:
        # Iterative, so a deep tree cannot hit the recursion limit.
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def _in(name: str, prefixes: Iterable[str]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def layer_violations(graph: dict[str, set[str]]) -> list[str]:
    problems = []
    for name, targets in sorted(graph.items()):
        for target in sorted(targets):
            if _in(name, ("routing", "sms")) and _in(target, ("app",)):
                problems.append(
                    f"{name} imports {target}: the pure core and the edge never import app"
                )
            if (
                _in(target, ("app.api", "app.console"))
                and not _in(name, MAY_IMPORT_WEB)
                and target not in _ancestors(name)
            ):
                problems.append(f"{name} imports {target}: only the web layers may")
    return problems


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    return import_graph(modules_under(ROOT, PACKAGES))


def test_there_are_no_import_circles(graph: dict[str, set[str]]) -> None:
    assert cycles(graph) == []


def test_layers_import_only_downwards(graph: dict[str, set[str]]) -> None:
    assert layer_violations(graph) == []


def test_package_inits_import_nothing_of_their_own(graph: dict[str, set[str]]) -> None:
    modules = modules_under(ROOT, PACKAGES)
    inits = [n for n, p in modules.items() if p.name == "__init__.py"]
    assert len(inits) >= 10  # app, its packages, routing, sms
    for name in inits:
        own = {t for t in graph[name] if t.startswith(name + ".")}
        assert own == set(), f"{name}/__init__ imports {sorted(own)}"


# The checker itself, on small trees: it must see what it is there to see.


def _tree(tmp_path: Path, files: dict[str, str]) -> dict[str, set[str]]:
    for rel, text in files.items():
        path = tmp_path / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return import_graph(modules_under(tmp_path, ("app", "routing", "sms")))


def test_the_checker_sees_a_circle_hidden_in_a_function(tmp_path: Path) -> None:
    graph = _tree(
        tmp_path,
        {
            "app/__init__.py": "",
            "app/a.py": "from app.b import f\n",
            "app/b.py": "def f():\n    from app import a\n",
            "app/c.py": "import app.a\n",
        },
    )
    assert cycles(graph) == [["app.a", "app.b"]]


def test_the_checker_sees_an_init_importing_its_own_module(tmp_path: Path) -> None:
    graph = _tree(
        tmp_path,
        {
            "app/__init__.py": "",
            "app/pkg/__init__.py": "from app.pkg.mod import x\n",
            "app/pkg/mod.py": "x = 1\n",
        },
    )
    assert cycles(graph) == [["app.pkg", "app.pkg.mod"]]


def test_the_checker_sees_a_relative_import_circle(tmp_path: Path) -> None:
    graph = _tree(
        tmp_path,
        {
            "app/__init__.py": "",
            "app/pkg/__init__.py": "",
            "app/pkg/a.py": "from . import b\n",
            "app/pkg/b.py": "from .a import x\n",
        },
    )
    assert cycles(graph) == [["app.pkg.a", "app.pkg.b"]]


def test_the_checker_sees_layer_violations(tmp_path: Path) -> None:
    graph = _tree(
        tmp_path,
        {
            "app/__init__.py": "",
            "app/api/__init__.py": "",
            "app/api/schemas.py": "",
            "app/cases.py": "from app.api.schemas import x\n",
            "app/web.py": "from app.api import schemas\n",
            "routing/__init__.py": "",
            "routing/core.py": "import app.cases\n",
            "sms/__init__.py": "",
        },
    )
    assert layer_violations(graph) == [
        "app.cases imports app.api: only the web layers may",
        "app.cases imports app.api.schemas: only the web layers may",
        "routing.core imports app: the pure core and the edge never import app",
        "routing.core imports app.cases: the pure core and the edge never import app",
    ]
