"""No import cycles between the project's modules (chromm_addon, operators, panels).

The graph is read from the source (ast), not by importing: every relative import counts, also
those inside functions (a lazy import still ties the two modules together).
"""

import ast
import os

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGES = ("chromm_addon", "operators", "panels")


def _modules():
    """{dotted name: path}; a package is its `__init__.py`, under the package's name."""
    found = {}
    for package in PACKAGES:
        for folder, dirs, files in os.walk(os.path.join(ROOT, package)):
            dirs[:] = [d for d in dirs if d != "__pycache__"]
            rel = os.path.relpath(folder, ROOT).replace(os.sep, ".")
            for name in files:
                if name.endswith(".py"):
                    found[rel if name == "__init__.py" else f"{rel}.{name[:-3]}"] = os.path.join(folder, name)
    return found


def import_graph():
    modules = _modules()
    graph = {name: set() for name in modules}
    for name, path in modules.items():
        is_package = path.endswith("__init__.py")
        with open(path, encoding="utf-8") as fh:
            tree = ast.parse(fh.read(), path)
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.level:
                parts = name.split(".") if is_package else name.split(".")[:-1]
                base = parts[:len(parts) - (node.level - 1)] if node.level > 1 else parts
                target = ".".join(base + ([node.module] if node.module else []))
                for alias in node.names:
                    sub = f"{target}.{alias.name}" if target else alias.name
                    if sub in modules:
                        graph[name].add(sub)
                    elif target in modules:
                        graph[name].add(target)
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    assert alias.name.split(".")[0] not in PACKAGES, \
                        f"{path}: absolute import of {alias.name} (the add-on uses relative imports)"
    graph = {name: {t for t in targets if t != name} for name, targets in graph.items()}
    return graph


def find_cycle(graph):
    """One cycle as a list of modules (first == last), or None."""
    state, stack = {}, []

    def visit(node):
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == "open":
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state:
                cycle = visit(nxt)
                if cycle:
                    return cycle
        stack.pop()
        state[node] = "done"
        return None

    for node in sorted(graph):
        if node not in state:
            cycle = visit(node)
            if cycle:
                return cycle
    return None


def test_the_finder_sees_a_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set(), "c": {"a", "b"}}) is None


def test_the_graph_holds_known_edges():
    graph = import_graph()
    assert "chromm_addon.options" in graph["chromm_addon.commands.reconstruct"]
    assert "chromm_addon.evaluation.metrics" in graph["chromm_addon.evaluation.evaluate"]  # `from . import metrics`
    assert "panels.properties" in graph["operators.reconstruct"]                           # inside a method
    assert "chromm_addon.client.setup_check" in graph["panels.preferences"]                # `..chromm_addon.x`


def test_no_import_cycles():
    cycle = find_cycle(import_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle)
