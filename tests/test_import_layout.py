"""Static checks on the package's import graph (no package import needed).

Every ``.py`` file under ``src/napari_coordgate`` is parsed with :mod:`ast`;
every import statement is collected -- at module level *and* inside functions,
``import x`` as well as ``from .x import y`` -- with relative imports resolved
to absolute dotted module names.  ``from . import foo`` where ``foo`` is a
submodule counts as importing that submodule.

Importing ``a.b.c`` also runs ``a/__init__`` and ``a/b/__init__``, so the
graph gets an *implicit* edge to each such package -- except to packages that
contain the importing module (those are already initialised, or being
initialised, whenever the importer runs; counting them would make every
``__init__`` that re-exports its submodules a cycle).  An explicit import of an
enclosing package (``from .. import __version__``) is a real edge.  This is
what makes e.g. ``models.unet -> inference.normalization`` a cycle: it runs
``inference/__init__``, which imports ``inference.deblur``, which imports
``models.unet``.

The checks:

a. no import cycle between modules of the package;
b. no private name (``_name``, not dunder) imported from another module of the
   package -- importing a private *module* (``from . import _threads``) is fine;
c. the Qt-free core (everything outside ``napari_coordgate._qt``) never imports
   the Qt layer (``napari_coordgate._qt``, ``qtpy``, ``PyQt*``, ``PySide*``,
   ``superqt``, ``napari``, ``magicgui``), except for the imports listed in
   :data:`ALLOWED_CORE_QT_IMPORTS`;
d. imports point down the layers of :data:`LAYERS` (and never to the package
   root, the facade): a module imports its own layer or a lower one, and two
   groups of one layer (the CLI and the widgets, say) never import each other.

(a), (b) and (d) have no allowlist on purpose.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

PACKAGE = "napari_coordgate"
SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE_DIR = SRC / PACKAGE
QT_LAYER = f"{PACKAGE}._qt"

#: Third-party top-level modules that belong to the GUI side.
QT_EXTERNAL_EXACT = frozenset({"qtpy", "napari", "magicgui", "superqt"})
QT_EXTERNAL_PREFIXES = ("PyQt", "PySide")

#: The layers of the package, lowest first: a module may import from its own layer or a lower one, never a
#: higher one. Each entry is a module or a subpackage (longest match wins); the old import paths kept for one
#: release re-export from below and sit with the facade.
LAYERS: tuple[tuple[str, ...], ...] = (
    # 0: foundations, importing nothing of the package's or only each other
    ("_version", "validation", "cancellation", "device", "precision", "normalization", "files.atomic",
     "_generators", "image_strip"),
    # 1: the two independent cores: PSF optics and calibration, the networks
    ("psf", "models"),
    # 2: what is built on one of them: training data, model files, inference, gate maps
    ("data", "model_files", "inference", "gate_map"),
    # 3: training, out-of-core deblurring, exports
    ("training", "scale", "export"),
    # 4: the bundled base models (trained with the training loop); image files and batches of them (deblurred
    # in memory or out of core)
    ("pretrained", "files"),
    # 5: the two front ends, which never import each other
    ("cli", "_qt"),
    # 6: the facade and the old import paths
    ("", "model_io", "model_header", "inference.normalization", "export.bioimageio_reader"),
)
#: The layers inside ``psf``, lowest first (the same rule, relative to ``napari_coordgate.psf``): the grid, the
#: kernels and the checks at the bottom, then the PSF field, then optics and the field models, then the two calibrations, then their report and
#: the package's own ``__init__``.
PSF_LAYERS: tuple[tuple[str, ...], ...] = (
    ("field_grid", "kernels", "centroid", "image_checks", "fit_threads"),
    ("psf_field",),
    ("optics", "field_models"),
    ("beads", "pair"),
    ("calibration_report", ""),
)
#: Imports between different groups of the same layer that are part of the design (importer group, target group).
ALLOWED_PEERS: frozenset[tuple[str, str]] = frozenset()


#: Core -> Qt/napari imports that exist today and are tolerated, keyed by
#: (importing module, imported module, scope) where scope is "module" or
#: "function".  Each entry says why.  Do not add to this list: move the code
#: into ``napari_coordgate._qt`` instead.
ALLOWED_CORE_QT_IMPORTS: dict[tuple[str, str, str], str] = {
    # Empty: no module outside napari_coordgate._qt imports qtpy, PyQt*/PySide*,
    # superqt, napari, magicgui or napari_coordgate._qt today, at module level or
    # inside functions.
}


# ----------------------------------------------------------------------------
# Collection
# ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Import:
    importer: str  # dotted name of the importing module
    path: Path  # file of the importing module
    lineno: int
    scope: str  # "module" (incl. class bodies, if/try at top level) or "function"
    target: str  # absolute dotted name of the imported module
    name: str | None  # for ``from m import name`` (name not a submodule); else None
    internal: bool  # target is inside the package
    statement: str  # the source text of the import statement (first line)

    @property
    def where(self) -> str:
        return f"{self.path.relative_to(SRC.parent)}:{self.lineno}"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def is_package_file(path: Path) -> bool:
    return path.name == "__init__.py"


def package_files() -> list[Path]:
    return sorted(p for p in PACKAGE_DIR.rglob("*.py") if "__pycache__" not in p.parts)


def known_modules() -> dict[str, Path]:
    return {module_name(p): p for p in package_files()}


def _owning_module(target: str, modules: dict[str, Path]) -> str:
    """The longest prefix of ``target`` that is a module of the package."""
    parts = target.split(".")
    while parts:
        candidate = ".".join(parts)
        if candidate in modules:
            return candidate
        parts.pop()
    return target


def _resolve_relative(importer: str, is_pkg: bool, level: int, module: str | None) -> str:
    package = importer if is_pkg else importer.rpartition(".")[0]
    parts = package.split(".")
    if level > 1:
        parts = parts[: len(parts) - (level - 1)]
    base = ".".join(parts)
    if module:
        base = f"{base}.{module}" if base else module
    return base


def _scopes(tree: ast.AST):
    """Yield (import node, scope) for every import in ``tree``."""
    stack: list[tuple[ast.AST, str]] = [(tree, "module")]
    while stack:
        node, scope = stack.pop()
        for child in ast.iter_child_nodes(node):
            child_scope = scope
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
                child_scope = "function"
            if isinstance(child, (ast.Import, ast.ImportFrom)):
                yield child, scope
            stack.append((child, child_scope))


def collect_imports() -> list[Import]:
    modules = known_modules()
    found: list[Import] = []
    for path in package_files():
        source = path.read_text(encoding="utf-8")
        lines = source.splitlines()
        tree = ast.parse(source, filename=str(path))
        importer = module_name(path)
        for node, scope in _scopes(tree):
            text = lines[node.lineno - 1].strip()
            common = dict(importer=importer, path=path, lineno=node.lineno, scope=scope, statement=text)
            if isinstance(node, ast.Import):
                for alias in node.names:
                    internal = alias.name == PACKAGE or alias.name.startswith(PACKAGE + ".")
                    target = _owning_module(alias.name, modules) if internal else alias.name
                    found.append(Import(target=target, name=None, internal=internal, **common))
                continue
            if node.level:
                base = _resolve_relative(importer, is_package_file(path), node.level, node.module)
            else:
                base = node.module or ""
            internal = base == PACKAGE or base.startswith(PACKAGE + ".")
            for alias in node.names:
                if alias.name == "*":
                    target = _owning_module(base, modules) if internal else base
                    found.append(Import(target=target, name="*", internal=internal, **common))
                    continue
                submodule = f"{base}.{alias.name}"
                if internal and submodule in modules:
                    found.append(Import(target=submodule, name=None, internal=True, **common))
                else:
                    target = _owning_module(base, modules) if internal else base
                    found.append(Import(target=target, name=alias.name, internal=internal, **common))
    found.sort(key=lambda i: (str(i.path), i.lineno, i.target, i.name or ""))
    return found


# ----------------------------------------------------------------------------
# Analyses
# ----------------------------------------------------------------------------


def _ancestors(module: str) -> set[str]:
    """Packages that contain ``module`` (for a package, itself included)."""
    parts = module.split(".")
    found = {".".join(parts[:n]) for n in range(1, len(parts))}
    if (PACKAGE_DIR / Path(*parts[1:]) / "__init__.py").is_file():
        found.add(module)
    return found


@dataclass(frozen=True)
class Edge:
    importer: str
    target: str
    imp: Import  # the import statement that creates the edge
    implicit: bool  # True: the edge is to a package whose __init__ the import runs


def internal_edges(imports: list[Import]) -> list[Edge]:
    """Module-to-module edges, one per (statement, target), implicit ones included."""
    modules = known_modules()
    edges: dict[tuple[str, int, str], Edge] = {}
    for imp in imports:
        if not (imp.internal and imp.target in modules):
            continue
        key = (imp.importer, imp.lineno, imp.target)
        edges.setdefault(key, Edge(imp.importer, imp.target, imp, implicit=False))
        mine = _ancestors(imp.importer)
        parts = imp.target.split(".")
        for n in range(1, len(parts)):
            package = ".".join(parts[:n])
            if package in modules and package not in mine:
                key = (imp.importer, imp.lineno, package)
                edges.setdefault(key, Edge(imp.importer, package, imp, implicit=True))
    return sorted(edges.values(), key=lambda e: (str(e.imp.path), e.imp.lineno, e.target))


def internal_graph(
    imports: list[Import], scope: str | None = None, implicit: bool = True
) -> dict[str, set[str]]:
    """Module -> set of package modules it imports (optionally one scope only, or explicit edges only)."""
    graph: dict[str, set[str]] = {m: set() for m in known_modules()}
    for edge in internal_edges(imports):
        if (scope is None or edge.imp.scope == scope) and (implicit or not edge.implicit):
            graph[edge.importer].add(edge.target)
    return graph


def strongly_connected_components(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's algorithm, iterative; components in discovery order."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    components: list[list[str]] = []
    counter = 0
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            advanced = False
            for child in children:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                    advanced = True
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            if advanced:
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
                components.append(sorted(component))
    return components


def import_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components that contain a cycle (size > 1 or self-loop)."""
    return [
        c
        for c in strongly_connected_components(graph)
        if len(c) > 1 or c[0] in graph.get(c[0], ())
    ]


def shortest_cycle_through(graph: dict[str, set[str]], start: str, within: set[str]) -> list[str]:
    """A shortest cycle start -> ... -> start inside ``within`` (BFS)."""
    parents: dict[str, str] = {}
    frontier = [start]
    seen = {start}
    while frontier:
        nxt = []
        for node in frontier:
            for child in sorted(graph[node] & within):
                if child == start:
                    path = [node]
                    while path[-1] != start:
                        path.append(parents[path[-1]])
                    return [start, *reversed(path[:-1]), start] if node != start else [start, start]
                if child not in seen:
                    seen.add(child)
                    parents[child] = node
                    nxt.append(child)
        frontier = nxt
    return []


def cycle_edges(imports: list[Import], component: list[str]) -> list[Edge]:
    members = set(component)
    return [e for e in internal_edges(imports) if e.importer in members and e.target in members]


def is_private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def private_name_imports(imports: list[Import]) -> list[Import]:
    return [
        i
        for i in imports
        if i.internal and i.name not in (None, "*") and is_private(i.name) and i.target != i.importer
    ]


def in_qt_layer(module: str) -> bool:
    return module == QT_LAYER or module.startswith(QT_LAYER + ".")


def is_qt_target(imp: Import) -> bool:
    if imp.internal:
        return in_qt_layer(imp.target)
    top = imp.target.split(".")[0]
    return top in QT_EXTERNAL_EXACT or top.startswith(QT_EXTERNAL_PREFIXES)


def core_qt_imports(imports: list[Import]) -> list[Import]:
    return [i for i in imports if not in_qt_layer(i.importer) and is_qt_target(i)]


# ----------------------------------------------------------------------------
# Tests
# ----------------------------------------------------------------------------


def test_sources_are_found():
    modules = known_modules()
    assert f"{PACKAGE}" in modules and QT_LAYER in modules, sorted(modules)
    assert collect_imports(), "no imports collected: is SRC right?"


def test_no_import_cycles():
    imports = collect_imports()
    graph = internal_graph(imports)
    cycles = import_cycles(graph)
    report = []
    for component in cycles:
        example = shortest_cycle_through(graph, component[0], set(component))
        report.append(f"cycle among {len(component)} modules: {', '.join(component)}")
        report.append(f"  e.g. {' -> '.join(example)}")
        for edge in cycle_edges(imports, component):
            imp = edge.imp
            how = f"{imp.scope}, runs {edge.target}/__init__" if edge.implicit else imp.scope
            report.append(f"  {imp.where} [{how}] {edge.importer} -> {edge.target}: {imp.statement}")
    assert not cycles, "import cycles between package modules:\n" + "\n".join(report)


def test_no_private_names_imported_across_modules():
    offenders = private_name_imports(collect_imports())
    lines = [f"  {i.where}: {i.name} from {i.target}  ({i.statement})" for i in offenders]
    assert not offenders, (
        "private names imported from another module of the package "
        "(make them public, or move the caller next to them):\n" + "\n".join(lines)
    )


def test_core_does_not_import_qt_layer():
    found = core_qt_imports(collect_imports())
    unexpected = [i for i in found if (i.importer, i.target, i.scope) not in ALLOWED_CORE_QT_IMPORTS]
    lines = [f"  {i.where} [{i.scope}] {i.importer} -> {i.target}  ({i.statement})" for i in unexpected]
    assert not unexpected, (
        "the Qt-free core imports the Qt/napari layer (move this code into "
        f"{QT_LAYER}):\n" + "\n".join(lines)
    )


def test_qt_allowlist_is_not_stale():
    found = {(i.importer, i.target, i.scope) for i in core_qt_imports(collect_imports())}
    stale = sorted(set(ALLOWED_CORE_QT_IMPORTS) - found)
    assert not stale, "ALLOWED_CORE_QT_IMPORTS entries that no longer occur (remove them):\n" + "\n".join(
        f"  {s}" for s in stale
    )



def layer_of(module: str, layers=LAYERS, root: str = PACKAGE) -> tuple[int, str]:
    """The layer of a module under ``root`` and the group (entry of ``layers``) that placed it there."""
    relative = module[len(root) + 1:] if module != root else ""
    best = None
    for rank, groups in enumerate(layers):
        for group in groups:
            if relative == group or (group and relative.startswith(group + ".")):
                if best is None or len(group) > len(best[1]):
                    best = (rank, group)
    if best is None:
        raise AssertionError(f"{module} is in no layer of {'LAYERS' if layers is LAYERS else 'PSF_LAYERS'}: place it")
    return best


def layering_offenders(layers, root: str) -> list[tuple[Edge, str]]:
    """Imports among the modules under ``root`` that point up ``layers``, or sideways between two groups."""
    offenders = []
    for edge in internal_edges(collect_imports()):
        inside = [m == root or m.startswith(root + ".") for m in (edge.importer, edge.target)]
        if edge.implicit or not all(inside):
            continue
        (low, group), (high, target_group) = layer_of(edge.importer, layers, root), layer_of(edge.target, layers, root)
        if edge.target == root and root == PACKAGE:
            offenders.append((edge, "imports the package root"))
        elif high > low:
            offenders.append((edge, f"layer {low} ({group or 'root'}) imports layer {high} ({target_group or 'root'})"))
        elif high == low and group != target_group and (group, target_group) not in ALLOWED_PEERS:
            offenders.append((edge, f"{group} imports its peer {target_group}"))
    return offenders


def test_every_module_has_a_layer():
    for module in known_modules():
        layer_of(module)


def test_imports_only_point_down():
    offenders = layering_offenders(LAYERS, PACKAGE)
    lines = [f"  {e.imp.where} {e.importer} -> {e.target}: {why}  ({e.imp.statement})" for e, why in offenders]
    assert not offenders, "imports that point up or sideways (see LAYERS):\n" + "\n".join(lines)


def test_psf_imports_only_point_down():
    root = f"{PACKAGE}.psf"
    for module in known_modules():
        if module == root or module.startswith(root + "."):
            layer_of(module, PSF_LAYERS, root)
    offenders = layering_offenders(PSF_LAYERS, root)
    lines = [f"  {e.imp.where} {e.importer} -> {e.target}: {why}  ({e.imp.statement})" for e, why in offenders]
    assert not offenders, "imports inside psf that point up or sideways (see PSF_LAYERS):\n" + "\n".join(lines)


def test_checker_finds_cycles_in_a_toy_graph():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"d"}, "e": {"a"}}
    assert sorted(import_cycles(graph)) == [["a", "b", "c"], ["d"]]
    assert shortest_cycle_through(graph, "a", {"a", "b", "c"}) == ["a", "b", "c", "a"]
