"""The import graph of the project's packages, read with ``ast`` (imports inside functions and
under ``TYPE_CHECKING`` count): no cycle, and no import from a lower layer back up to one built
on it. A failure names the cycle or the edge."""

from __future__ import annotations

import ast
from pathlib import Path

import networkx as nx
import pytest

from tests.conftest import REPO

PACKAGES = ("rankops", "infra", "lambdas", "emr_jobs", "sagemaker_jobs", "stepfunctions")

# (lower, higher): no module under ``lower`` imports a module under ``higher``.
LAYERS = [
    ("rankops.release", "rankops.serving"),
    ("rankops.features", "rankops.serving"),
    ("rankops.features", "rankops.training"),
    ("rankops.training", "rankops.serving"),
    ("rankops.", "rankops.cli"),
    ("rankops.", "sagemaker_jobs"),
    ("rankops.", "lambdas"),
    ("rankops.", "emr_jobs"),
    ("rankops.", "infra"),
]
# The configuration is the bottom layer: it reaches only settings sections kept beside their
# packages (the online stores' settings, ``[features]``) and the declarations those check against.
CONFIG_REACHES = {
    "rankops.config_aws",
    "rankops.config_sections",
    "rankops.errors",
    "rankops.features.settings",
    "rankops.features.registry",
    "rankops.features.declaration",  # the registry's types
    "rankops.features.transforms",  # the registry's on-demand maths (a NumPy-only leaf)
    "rankops.features.online.base",
    "rankops.features.online.embedded",
    "rankops.features.online.redis",
    "rankops.features.online.dynamodb",
    "rankops.features.online.redis_wire",  # the Redis store's RESP encoding (NumPy, Arrow)
    "rankops.features.online.lease",  # a leaf (stdlib only): the stores' writer lease default
    "rankops.features.online.redis_auth",  # a leaf (boto3 imported when a token is read): the AUTH token
    "rankops.redaction",  # a leaf (stdlib only): the Redis store redacts its URL in errors
}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path, module: str, known: set[str]) -> set[str]:
    """Project modules ``module`` imports: ``from a import b`` counts as ``a.b`` when that is a module."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            names = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base for alias in node.names]
        else:
            continue
        for name in names:
            while name and name not in known:  # `import a.b.c` of a package attribute: its module
                name = name.rpartition(".")[0]
            if name and name != module:
                found.add(name)
    return found


def _edge_is_package_init(src: str, dst: str) -> bool:
    """A module importing its own package's ``__init__`` (Python runs it first anyway)."""
    return src.startswith(dst + ".")


@pytest.fixture(scope="module")
def graph() -> nx.DiGraph:
    files = [p for pkg in PACKAGES for p in sorted((REPO / pkg).rglob("*.py"))]
    known = {_module_name(p) for p in files}
    g = nx.DiGraph()
    for path in files:
        module = _module_name(path)
        g.add_node(module)
        for target in _imports(path, module, known):
            if not _edge_is_package_init(module, target):
                g.add_edge(module, target)
    return g


def test_the_graph_sees_imports_inside_functions(graph: nx.DiGraph) -> None:
    assert graph.number_of_nodes() > 100
    assert graph.has_edge("sagemaker_jobs.training.entry", "rankops.sagemaker_contract")  # imported in main()


def test_no_import_cycle(graph: nx.DiGraph) -> None:
    tangled = [sorted(c) for c in nx.strongly_connected_components(graph) if len(c) > 1]
    if tangled:
        cycle = nx.find_cycle(graph.subgraph(tangled[0]))
        pytest.fail(
            f"{len(tangled)} import cycle group(s) {tangled}; e.g. "
            + " -> ".join([*(a for a, _ in cycle), cycle[0][0]])
        )


@pytest.mark.parametrize(("lower", "higher"), LAYERS)
def test_no_import_points_back_up(graph: nx.DiGraph, lower: str, higher: str) -> None:
    def under(module: str, prefix: str) -> bool:
        return (
            module.startswith(prefix) if prefix.endswith(".") else module == prefix or module.startswith(prefix + ".")
        )

    upward = sorted(
        f"{a} -> {b}" for a, b in graph.edges if under(a, lower) and under(b, higher) and not under(b, lower)
    )
    assert not upward, f"{lower} must not import {higher}: " + ", ".join(upward)


def test_errors_import_nothing_of_the_project(graph: nx.DiGraph) -> None:
    assert not list(graph.successors("rankops.errors"))


def test_the_configuration_reaches_only_settings_and_declarations(graph: nx.DiGraph) -> None:
    reached = nx.descendants(graph, "rankops.config")
    assert reached <= CONFIG_REACHES, f"rankops.config reaches {sorted(reached - CONFIG_REACHES)}"
