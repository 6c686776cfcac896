"""The house shows itself: docs/architecture.md names every module in its room, no module is much over
400 lines, the import graph has no cycle, and the costliest-first order names test files that exist."""

import ast
import re

from conftest import ROOT

LIMIT = 400  # "no module over 400 lines"
PACKAGE = ROOT / "gradcheck"


def _modules() -> dict[str, str]:
    """{dotted module name: path relative to the package} for every module of the package."""
    found = {}
    for path in PACKAGE.rglob("*.py"):
        relative = path.relative_to(PACKAGE)
        parts = list(relative.with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(["gradcheck", *parts])] = relative.as_posix()
    return found


def _rooms_in_architecture() -> dict[str, set[str]]:
    """{room ("" for the top level): the `module.py` names its part of docs/architecture.md gives}."""
    text = (ROOT / "docs" / "architecture.md").read_text()
    rooms: dict[str, set[str]] = {}
    room = None
    for line in text.splitlines():
        heading = re.match(r"\*\*([\w/]+)/\*\*", line)
        if heading:
            room = heading.group(1)
        elif line.startswith("**"):
            room = ""
        if room is not None:
            rooms.setdefault(room, set()).update(re.findall(r"`(\w+\.py)`", line))
    return rooms


def test_every_module_is_named_in_its_room_in_the_architecture_notes():
    rooms = _rooms_in_architecture()
    missing = []
    for relative in _modules().values():
        parts = relative.split("/")
        room, name = ("/".join(parts[:-1]), parts[-1])
        if name in ("__init__.py", "__main__.py") and room == "":
            continue
        if name == "__init__.py" and name not in rooms.get(room, set()):
            continue  # a room's door: its docstring describes the room
        if name not in rooms.get(room, set()):
            missing.append(relative)
    assert missing == [], "modules docs/architecture.md does not place in their room"


def test_no_module_is_much_over_400_lines():
    sizes = {path.relative_to(PACKAGE).as_posix(): len(path.read_text().splitlines()) for path in PACKAGE.rglob("*.py")}
    assert {name: size for name, size in sizes.items() if size > LIMIT} == {}


def _imports(module: str, relative: str) -> set[str]:
    """Every gradcheck module `module` imports, at its top or inside a function."""
    tree = ast.parse((PACKAGE / relative).read_text())
    package = module if relative.endswith("__init__.py") else module.rpartition(".")[0]
    known = _modules()
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if not target.startswith("gradcheck"):
                continue
            for alias in node.names:
                candidate = f"{target}.{alias.name}"
                found.add(candidate if candidate in known else target)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name.startswith("gradcheck."))
    return {name for name in found if name in known and name != module}


def test_the_import_graph_has_no_cycle():
    """Imports inside functions count: a cycle hidden in a function body is still a cycle."""
    modules = _modules()
    graph = {module: _imports(module, relative) for module, relative in modules.items()}
    # A package's __init__ that re-exports its modules is not a step back: leave the edges from a
    # room's door to its own modules out, and keep every other edge.
    for module in graph:
        if modules[module].endswith("__init__.py"):
            graph[module] = {m for m in graph[module] if not m.startswith(module + ".")}
    state: dict[str, int] = {}
    cycles = []

    def visit(node, path):
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycles.append(path[path.index(nxt) :] + [nxt] if nxt in path else [node, nxt])
            elif nxt not in state:
                visit(nxt, path + [nxt])
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])
    assert cycles == []


def test_the_costliest_first_order_names_test_files_that_exist():
    """conftest.py hands these files to the xdist workers first; a renamed file would silently
    fall back to the end of the queue and leave one worker idle while the other runs it."""
    from conftest import _COSTLIEST_FIRST

    files = {path.name for path in (ROOT / "tests").rglob("test_*.py")}
    missing = [name for name in _COSTLIEST_FIRST if name not in files]
    assert missing == []
    assert len(set(_COSTLIEST_FIRST)) == len(_COSTLIEST_FIRST)


def test_rich_is_imported_only_where_output_is_drawn():
    """rich draws the terminal and the SVG: only render/ and cli/ may import it."""
    drawing = []
    for relative in _modules().values():
        tree = ast.parse((PACKAGE / relative).read_text())
        names = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
        names |= {node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and not node.level}
        if any(name == "rich" or name.startswith("rich.") for name in names):
            drawing.append(relative)
    assert drawing and all(path.startswith(("render/", "cli/")) for path in drawing), drawing


def test_comments_cite_only_files_in_the_repository():
    """The facts the code relies on are in docs/design-notes.md, cited by number; no comment points
    at notes outside the repository, and every number cited exists."""
    notes = (ROOT / "docs" / "design-notes.md").read_text()
    numbers = {int(n) for n in re.findall(r"^(\d+)\. ", notes, re.M)}
    outside, unknown = [], []
    for path in PACKAGE.rglob("*.py"):
        text = path.read_text()
        if re.search(r"NOTES\.md|STYLE\.md|DESIGN\.md|\.\./shared", text):
            outside.append(path.relative_to(PACKAGE).as_posix())
        for cited in re.findall(r"design notes\s+(\d+)", text):
            if int(cited) not in numbers:
                unknown.append((path.relative_to(PACKAGE).as_posix(), cited))
    assert outside == [] and unknown == []


def test_only_the_backend_speaks_the_framework():
    """The checks and the layer's bookkeeping ask the backend (runtime.backend()); only backends/
    imports TensorFlow, and only runtime.py imports a backend's package."""
    speaking = []
    for relative in _modules().values():
        if relative.startswith("backends/"):
            continue
        tree = ast.parse((PACKAGE / relative).read_text())
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""] if not node.level else []
                if node.level and (node.module or "").startswith("backends.") or "backends." in (node.module or ""):
                    names = ["gradcheck.backends." + (node.module or "").split("backends.", 1)[1]]
            for name in names:
                if name.split(".")[0] in ("tensorflow", "keras", "jax", "torch"):
                    speaking.append((relative, name))
                if name.startswith("gradcheck.backends.") and relative != "runtime.py":
                    speaking.append((relative, name))
    assert speaking == []
