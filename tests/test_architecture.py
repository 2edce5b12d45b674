"""The architecture of issue 18 as tests: no import circle, layers import downwards only, no private name crosses a
module, no function over 60 lines, every package says what it owns; and the fast lane's own rule (tests/conftest.py).

Each test reads the source with `ast` (nothing is imported) and reports every violation it finds, not only the first.
An import counts wherever it is written: at module level, inside a function (an import moved into a function to dodge
a circle is still one) or under `if TYPE_CHECKING:` (marked as such in the reports); `importlib.import_module("...")`
with a literal name counts too. `from package import name` depends on `package.name` when that is a module, else on
`package` (its `__init__`).

Layers, lowest first (a module may import its own layer and the ones below):
  ground floor (sf_kickstart/*.py that are not entry points) -> kickstart -> suites -> teachers -> sf -> agents ->
  populations -> report -> entry points (sf_kickstart.{train,evaluate,enjoy,tune}, sf_kickstart.zoo,
  sf_kickstart.report.__main__, sf_kickstart.report.cli).
"""

from __future__ import annotations

import ast
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Set, Tuple

import pytest

from tests.conftest import E2E_ONLY, E2EOnlyError, e2e_only_reason

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "sf_kickstart"
MAX_FUNCTION_LINES = 60

LAYERS = ["ground floor", "kickstart", "suites", "teachers", "sf", "agents", "populations", "report", "entry points"]
ENTRY_POINTS = {f"sf_kickstart.{m}" for m in ("train", "evaluate", "enjoy", "tune")}
ENTRY_POINT_PACKAGES = ("sf_kickstart.zoo",)  # thin `python -m sf_kickstart.zoo`
ENTRY_POINTS_IN_LAYERS = {"sf_kickstart.report.__main__", "sf_kickstart.report.cli"}
KICKSTART_MAY_IMPORT = {"sf_kickstart.tags", "sf_kickstart.errors", "sf_kickstart.paths"}
SAMPLE_FACTORY = ("sample_factory", "sf_examples")


# ------------------------------------------------------------------------------------------------ reading the source
def _module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


MODULES: Dict[str, Path] = {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}
TREES: Dict[str, ast.Module] = {m: ast.parse(p.read_text(), filename=str(p)) for m, p in MODULES.items()}


def _where(path: Path, line: int) -> str:
    return f"{path.relative_to(REPO)}:{line}"


@dataclass(frozen=True)
class Import:
    importer: str  # the importing module (or a file outside the package, by path)
    path: Path
    target: str  # an sf_kickstart module (the most specific one), or the external module's dotted name
    name: Optional[str]  # `from target import name` where name is not a module: the name; else None
    bound_as: Optional[str]  # the local name a module was bound to (`import a.b as m`, `from a import b`), else None
    line: int
    kind: str  # "module level" | "in a function" | "type checking only"
    written: str = ""  # the module as the import names it (`from a.b import x`: a.b), which may not exist

    @property
    def internal(self) -> bool:
        return self.target == "sf_kickstart" or self.target.startswith("sf_kickstart.")

    def __str__(self) -> str:
        what = f"{self.target}.{self.name}" if self.name else self.target
        kind = "" if self.kind == "module level" else f" ({self.kind})"
        return f"{_where(self.path, self.line)} {self.importer} imports {what}{kind}"


def _known_module(dotted: str) -> str:
    """The longest prefix of `dotted` that is one of our modules (`sf_kickstart.a.b.c` -> `sf_kickstart.a.b`)."""
    parts = dotted.split(".")
    for n in range(len(parts), 0, -1):
        if ".".join(parts[:n]) in MODULES:
            return ".".join(parts[:n])
    return dotted


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


class _ImportCollector(ast.NodeVisitor):
    def __init__(self, importer: str, path: Path, is_package: bool):
        self.importer, self.path, self.is_package = importer, path, is_package
        self.depth, self.type_checking = 0, 0
        self.found: List[Import] = []

    def _kind(self) -> str:
        return "type checking only" if self.type_checking else "in a function" if self.depth else "module level"

    def _add(self, written: str, name: Optional[str], bound_as: Optional[str], line: int) -> None:
        target = written if written in MODULES else _known_module(written)
        self.found.append(Import(self.importer, self.path, target, name, bound_as, line, self._kind(), written))

    def _function(self, node) -> None:
        self.depth += 1
        self.generic_visit(node)
        self.depth -= 1

    visit_FunctionDef = visit_AsyncFunctionDef = visit_Lambda = _function

    def visit_If(self, node: ast.If) -> None:
        if _is_type_checking(node.test):
            self.type_checking += 1
            for child in node.body:
                self.visit(child)
            self.type_checking -= 1
            for child in node.orelse:
                self.visit(child)
        else:
            self.generic_visit(node)

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            self._add(alias.name, None, alias.asname if alias.asname else None, node.lineno)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        base = node.module or ""
        if node.level:  # relative: from the importer's package
            package = self.importer.split(".") if self.is_package else self.importer.split(".")[:-1]
            package = package[: len(package) - (node.level - 1)]
            base = ".".join(package + ([base] if base else []))
        for alias in node.names:
            full = f"{base}.{alias.name}"
            if full in MODULES:
                self._add(full, None, alias.asname or alias.name, node.lineno)
            else:
                self._add(base, alias.name, None, node.lineno)

    def visit_Call(self, node: ast.Call) -> None:
        func = node.func
        name = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else None
        if name == "import_module" and node.args and isinstance(node.args[0], ast.Constant) \
                and isinstance(node.args[0].value, str):
            self._add(node.args[0].value, None, None, node.lineno)
        self.generic_visit(node)


def _imports(module: str, path: Path, tree: ast.Module) -> List[Import]:
    collector = _ImportCollector(module, path, path.name == "__init__.py")
    collector.visit(tree)
    return collector.found


IMPORTS: List[Import] = [i for m, p in MODULES.items() for i in _imports(m, p, TREES[m])]
INTERNAL: List[Import] = [i for i in IMPORTS if i.internal and i.target != i.importer]


def layer(module: str) -> str:
    if module in ENTRY_POINTS or module in ENTRY_POINTS_IN_LAYERS or \
            any(module == p or module.startswith(p + ".") for p in ENTRY_POINT_PACKAGES):
        return "entry points"
    parts = module.split(".")
    if len(parts) == 1 or MODULES.get(".".join(parts[:2]), Path()).name != "__init__.py":
        return "ground floor"
    return parts[1]


def _grouped(imports: List[Import], note=lambda i: "") -> List[str]:
    """One line per import statement: `from x import a, b` is one violation, naming a and b."""
    lines: Dict[Tuple, List[Import]] = {}
    for i in imports:
        lines.setdefault((str(i.path), i.line, i.target), []).append(i)
    out = []
    for same in lines.values():
        first, names = same[0], sorted({i.name for i in same if i.name})
        what = f"{first.target}.{{{', '.join(names)}}}" if len(names) > 1 else str(first).split(" imports ", 1)[1]
        kind = "" if first.kind == "module level" or len(names) < 2 else f" ({first.kind})"
        out.append(f"{_where(first.path, first.line)} {first.importer} imports {what}{kind}{note(first)}")
    return out


def _report(title: str, violations: List[str]) -> str:
    return f"{len(violations)} {title}:\n  " + "\n  ".join(violations)


# ------------------------------------------------------------------------------------------------ import circles
def _strongly_connected(graph: Dict[str, Set[str]]) -> List[List[str]]:
    """Tarjan's algorithm, iteratively: the components with a circle (more than one module, or a self-import)."""
    index: Dict[str, int] = {}
    low: Dict[str, int] = {}
    on_stack: Set[str] = set()
    stack: List[str] = []
    found: List[List[str]] = []
    counter = 0
    for root in sorted(graph):
        if root in index:
            continue
        work: List[Tuple[str, Iterator[str]]] = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, successors = work[-1]
            for succ in successors:
                if succ not in index:
                    index[succ] = low[succ] = counter
                    counter += 1
                    stack.append(succ)
                    on_stack.add(succ)
                    work.append((succ, iter(sorted(graph[succ]))))
                    break
                if succ in on_stack:
                    low[node] = min(low[node], index[succ])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    if len(component) > 1 or node in graph[node]:
                        found.append(sorted(component))
    return found


def _a_cycle(graph: Dict[str, Set[str]], component: List[str]) -> List[str]:
    """The shortest circle through the component's first module (breadth first inside the component)."""
    start, inside = component[0], set(component)
    previous: Dict[str, str] = {}
    frontier = [start]
    while frontier:
        following = []
        for node in frontier:
            for succ in sorted(graph[node] & inside):
                if succ == start:
                    path = [node]
                    while path[-1] != start:
                        path.append(previous[path[-1]])
                    return list(reversed(path)) + [start]
                if succ not in previous:
                    previous[succ] = node
                    following.append(succ)
        frontier = following
    return [start, start]


def test_no_import_circle():
    graph: Dict[str, Set[str]] = {m: set() for m in MODULES}
    edges: Dict[Tuple[str, str], List[Import]] = {}
    for i in INTERNAL:
        if i.target in MODULES:
            graph[i.importer].add(i.target)
            edges.setdefault((i.importer, i.target), []).append(i)
    circles = []
    for component in _strongly_connected(graph):
        cycle = _a_cycle(graph, component)
        steps = [f"    {edges[(a, b)][0]}" for a, b in zip(cycle, cycle[1:])]
        circles.append(" -> ".join(cycle) + f"  ({len(component)} modules in this knot: {', '.join(component)})\n"
                       + "\n".join(steps))
    assert not circles, _report("import circles", circles)


def _top_level_names(tree: ast.Module) -> Optional[Set[str]]:
    """The names a module binds at its top level (under if/try too); None when it has a module `__getattr__`."""
    names: Set[str] = set()
    body = list(tree.body)
    while body:
        node = body.pop()
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            if node.name == "__getattr__":
                return None
            names.add(node.name)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names.update((a.asname or a.name).split(".")[0] for a in node.names)
        elif isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names.update(n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name))
        elif isinstance(node, (ast.If, ast.Try, ast.With)):
            body += node.body + getattr(node, "orelse", []) + getattr(node, "finalbody", [])
            body += [n for h in getattr(node, "handlers", []) for n in h.body]
    return names


def test_every_import_of_ours_names_a_module_and_a_name_that_exist():
    """Function-level imports run only when the function does (often only in an e2e run): a module or name that a
    move left behind is found here, statically."""
    bound = {m: _top_level_names(t) for m, t in TREES.items()}
    bad = []
    for i in INTERNAL:
        if i.written not in MODULES:
            bad.append(f"{_where(i.path, i.line)} {i.importer}: no module {i.written}")
        elif i.name and i.name != "*" and bound[i.target] is not None and i.name not in bound[i.target]:
            bad.append(f"{i}: {i.target} has no {i.name}")
    assert not bad, _report("imports of modules or names that do not exist", list(dict.fromkeys(bad)))


# ------------------------------------------------------------------------------------------------ layers
def test_the_method_imports_no_sample_factory_and_nothing_above_the_ground_floor():
    bad = _grouped([
        i for i in IMPORTS
        if layer(i.importer) == "kickstart" and (
            i.target.split(".")[0] in SAMPLE_FACTORY
            or (i.internal and layer(i.target) != "kickstart" and i.target not in KICKSTART_MAY_IMPORT))
    ])
    assert not bad, _report("imports in sf_kickstart/kickstart/ of Sample Factory or of the project above "
                            f"{sorted(KICKSTART_MAY_IMPORT)}", bad)


def test_the_sample_factory_integration_imports_no_agent_population_or_report():
    above = ("agents", "populations", "report")
    bad = _grouped([i for i in INTERNAL if layer(i.importer) == "sf" and layer(i.target) in above])
    assert not bad, _report("imports in sf_kickstart/sf/ of agents/, populations/ or report/", bad)


def test_no_module_imports_an_entry_point():
    entry = ENTRY_POINTS | {m for m in MODULES if m.endswith(".__main__")}
    bad = _grouped([i for i in INTERNAL if i.target in entry])
    assert not bad, _report(f"imports of an entry point ({', '.join(sorted(entry))})", bad)


def test_every_module_is_in_a_layer():
    bad = [f"{_where(p, 1)} {m}: layer {layer(m)!r}" for m, p in MODULES.items() if layer(m) not in LAYERS]
    assert not bad, _report(f"modules outside the layers {LAYERS}", bad)


def test_layers_import_downwards_only():
    rank = {name: n for n, name in enumerate(LAYERS)}
    bad = _grouped([i for i in INTERNAL if rank.get(layer(i.target), -1) > rank.get(layer(i.importer), len(LAYERS))],
                   lambda i: f": {layer(i.importer)} -> {layer(i.target)}")
    assert not bad, _report("upward imports (" + " -> ".join(LAYERS) + ")", bad)


# ------------------------------------------------------------------------------------------------ private names
def _private(name: Optional[str]) -> bool:
    return bool(name) and name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def _outside_files() -> Dict[str, Path]:
    """Benchmarks, launchers and tests import our modules too: their imports are read as well."""
    files = {}
    for folder in ("benchmarks", "launchers", "tests"):
        for path in sorted((REPO / folder).rglob("*.py")):
            if "fault_inject" in path.parts or "hub_standin" in path.parts:
                continue
            files[str(path.relative_to(REPO))] = path
    return files


def _private_uses(importer: str, path: Path, tree: ast.Module) -> List[str]:
    """`from sf_kickstart.x import _name`, an import of a module `_x`, and `module._name` on a module imported by name
    (`from sf_kickstart import train; train._argv_value(...)`)."""
    ours = [i for i in _imports(importer, path, tree) if i.internal and i.target != importer]
    bad = [str(i) for i in ours if _private(i.name) or _private(i.target.rsplit(".", 1)[-1])]
    modules = {i.bound_as: i.target for i in ours if i.bound_as and i.name is None}
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in modules \
                and _private(node.attr):
            bad.append(f"{_where(path, node.lineno)} {importer} uses {modules[node.value.id]}.{node.attr}")
    return bad


def test_no_private_name_is_imported_from_another_module():
    bad = [v for m, p in MODULES.items() for v in _private_uses(m, p, TREES[m])]
    for name, path in _outside_files().items():
        bad += _private_uses(name.replace("/", ".")[: -len(".py")], path, ast.parse(path.read_text()))
    assert not bad, _report("private names used across modules", sorted(set(bad)))


# ------------------------------------------------------------------------------------------------ size and docs
def test_no_function_over_60_lines():
    long = []
    for module, tree in TREES.items():
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                n = node.end_lineno - node.lineno + 1
                if n > MAX_FUNCTION_LINES:
                    long.append((n, f"{_where(MODULES[module], node.lineno)} {module}.{node.name}: {n} lines"))
    assert not long, _report(f"functions over {MAX_FUNCTION_LINES} lines", [s for _, s in sorted(long, reverse=True)])


def test_every_package_says_what_it_owns():
    bad = []
    for folder in sorted({p.parent for p in PACKAGE.rglob("*.py")}):
        init = folder / "__init__.py"
        if not init.exists():
            bad.append(f"{folder.relative_to(REPO)}/ has no __init__.py")
        elif not (ast.get_docstring(TREES[_module_name(init)]) or "").strip():
            bad.append(f"{init.relative_to(REPO)} has no docstring")
    assert not bad, _report("packages without a docstring", bad)


# ------------------------------------------------------------------------------------------------ the tests themselves
def test_the_readers_see_what_they_must():
    """The checks above read something: the known layout, imports of every kind."""
    assert {"sf_kickstart.kickstart.loss", "sf_kickstart.sf.runner", "sf_kickstart.tags", "sf_kickstart.train"} \
        <= set(MODULES)
    assert layer("sf_kickstart.tags") == "ground floor" and layer("sf_kickstart.sf.fixes.robust_runner") == "sf"
    assert layer("sf_kickstart.train") == layer("sf_kickstart.zoo.__main__") == "entry points"
    assert layer("sf_kickstart.report.cli") == "entry points" and layer("sf_kickstart.report.io") == "report"
    code = ("import sf_kickstart.sf.runner as r\nfrom sf_kickstart import tags\nfrom .. import paths\n"
            "def f():\n    from sf_kickstart.kickstart.loss import kickstart_loss\n"
            "if TYPE_CHECKING:\n    from sf_kickstart.teachers import TeacherSpec\n"
            "importlib.import_module('sf_kickstart.suites.atari')\n")
    found = _imports("sf_kickstart.kickstart.x", PACKAGE / "kickstart" / "x.py", ast.parse(code))
    assert [(i.target, i.name, i.bound_as, i.kind) for i in found] == [
        ("sf_kickstart.sf.runner", None, "r", "module level"),
        ("sf_kickstart.tags", None, "tags", "module level"),
        ("sf_kickstart.paths", None, "paths", "module level"),
        ("sf_kickstart.kickstart.loss", "kickstart_loss", None, "in a function"),
        ("sf_kickstart.teachers", "TeacherSpec", None, "type checking only"),
        ("sf_kickstart.suites.atari", None, None, "module level"),
    ]
    private = ("from sf_kickstart.train import _make_env_info, make\nfrom sf_kickstart import enjoy as e\n"
               "e._argv_value(e.public, e.__doc__)\n")
    found = _private_uses("benchmarks.x", REPO / "benchmarks" / "x.py", ast.parse(private))
    assert [v.split(" ", 1)[1] for v in found] == [
        "benchmarks.x imports sf_kickstart.train._make_env_info", "benchmarks.x uses sf_kickstart.enjoy._argv_value"]
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    (component,) = _strongly_connected(graph)
    assert component == ["a", "b", "c"] and _a_cycle(graph, component) == ["a", "b", "c", "a"]


def test_the_fast_lane_refuses_sf_kickstart_processes_and_training(request):
    """tests/conftest.py's guard, in this (unmarked) test: the rule holds for every test not marked e2e."""
    assert e2e_only_reason([sys.executable, "-m", "sf_kickstart.train", "--env=x"])
    assert e2e_only_reason(f"{sys.executable} -m sf_kickstart.zoo list")
    assert e2e_only_reason([sys.executable, "-c", "from sample_factory.train import run_rl; run_rl(cfg)"])
    assert not e2e_only_reason([sys.executable, "-c", "import sf_kickstart.suites.dmlab30"])  # an import check
    assert not e2e_only_reason(["git", "rev-parse", "HEAD"]) and not e2e_only_reason(["bash", "-n", "x.sh"])
    try:
        with pytest.raises(E2EOnlyError, match="not marked e2e but it starts `python -m sf_kickstart.train`"):
            subprocess.run([sys.executable, "-m", "sf_kickstart.train", "--env=minigrid_suite", "--help"],
                           capture_output=True, timeout=60)
        from sample_factory.algo.runners.runner import Runner

        with pytest.raises(E2EOnlyError, match="Sample Factory runner"):
            Runner.init(object())
        assert len(request.node.stash[E2E_ONLY]) == 2  # recorded: this test would fail even though it caught them
    finally:
        request.node.stash[E2E_ONLY].clear()
    assert subprocess.run(["git", "--version"], capture_output=True).returncode == 0


@pytest.mark.e2e
def test_an_e2e_test_may_start_them():
    r = subprocess.run([sys.executable, "-m", "sf_kickstart.train", "--env=minigrid_suite", "--help"],
                       capture_output=True, text=True, cwd=REPO, timeout=300)
    assert r.returncode == 0 and "--teacher" in r.stdout, r.stderr[-2000:]
