"""One feature definition: no module in rankops/ names a registry feature outside the registry.

Code that needs features iterates the declarations (``registry.stored_features``, an on-demand
feature's ``inputs`` and ``function``, ``registry.rule_features``), so adding, renaming or
dropping a feature is one edit in rankops/features/registry.py. This test reads every string
literal of rankops/**/*.py (docstrings excepted: prose may give examples) and fails with
file:line on a registry feature name, as a whole word.
"""

from __future__ import annotations

import ast
import re
import typing
from pathlib import Path

import numpy as np

from rankops.features import registry, transforms
from rankops.training import baseline

ROOT = Path(__file__).resolve().parents[2]
# The registry itself: its declarations and the types they are made of.
REGISTRY = {"rankops/features/registry.py", "rankops/features/declaration.py"}
# The only allowance: a feature that *is* a catalog column (``price``, ``created_at_s``, ``category_code``:
# an Attribute feature takes its column's name) shares that name with the raw/derived catalog column. The
# modules below read or produce the catalog itself (ingest the raw items, generate them, derive the catalog
# columns in Spark, draw typical catalog values), where the literal names the column, not the feature; they
# may name catalog columns only.
CATALOG_COLUMNS = frozenset(typing.get_args(registry.CatalogColumn))
CATALOG_MODULES = (
    "rankops/ingest/",
    "rankops/synthetic.py",
    "rankops/features/spark.py",
    "rankops/features/samples",
    "rankops/simulate/truth.py",  # the generator's catalog redrawn for the simulator
)


def _docstrings(tree: ast.AST) -> set[int]:
    kinds = (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)
    return {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, kinds) and node.body and isinstance(node.body[0], ast.Expr)
        if isinstance(node.body[0].value, ast.Constant)
    }


def feature_names_in_literals(base: Path, *roots: str) -> list[str]:
    """``path:line: 'name' in '<literal>'`` for every registry feature name in a string literal
    of the Python files at ``roots`` (folders or files, relative to ``base``)."""
    names = sorted({f.name for f in registry.FEATURES}, key=len, reverse=True)
    word = re.compile(r"(?<![A-Za-z0-9_])(" + "|".join(map(re.escape, names)) + r")(?![A-Za-z0-9_])")
    found = []
    paths = [p for r in roots for p in ([base / r] if r.endswith(".py") else sorted((base / r).rglob("*.py")))]
    for path in paths:
        rel = path.relative_to(base).as_posix()
        if rel in REGISTRY:
            continue
        tree = ast.parse(path.read_text(), filename=rel)
        docs = _docstrings(tree)
        catalog_module = rel.startswith(CATALOG_MODULES)
        for node in ast.walk(tree):
            if not (isinstance(node, ast.Constant) and isinstance(node.value, str)) or id(node) in docs:
                continue
            for name in word.findall(node.value):
                if not (catalog_module and name in CATALOG_COLUMNS):
                    found.append(f"{rel}:{node.lineno}: {name!r} in {node.value[:60]!r}")
    return found


def test_no_module_in_rankops_names_a_registry_feature() -> None:
    found = feature_names_in_literals(ROOT, "rankops")
    assert not found, "registry feature names hard-coded outside the registry:\n" + "\n".join(found)


def test_benchmarks_and_test_helpers_build_rows_from_the_registry() -> None:
    """The benchmarks and the serving tests' seeded stores draw their rows from the declarations
    (rankops.features.samples), so a new feature needs no edit there."""
    found = feature_names_in_literals(ROOT, "benchmarks", "tests/serving_helpers.py")
    assert not found, "feature rows built by hand:\n" + "\n".join(found)


def test_the_scan_finds_a_hard_coded_name(tmp_path: Path) -> None:
    """The scan is not vacuous: a literal feature name is reported with its file and line,
    a docstring is not, and a catalog column is allowed only in a catalog module."""
    pkg = tmp_path / "rankops"
    (pkg / "serving").mkdir(parents=True)
    (pkg / "ingest").mkdir()
    name = registry.model_features()[0]
    source = f'"""Mentions {name} in prose."""\n\nCOLS = ["{name}"]\nY = f"{{1}} {name}"\n'
    (pkg / "serving" / "x.py").write_text(source)
    (pkg / "ingest" / "raw.py").write_text('COLUMNS = ("price",)\nNOT_A_COLUMN = "ctr_7d"\n')
    (pkg / "serving" / "y.py").write_text('COLUMNS = ("price",)\n')
    found = feature_names_in_literals(tmp_path, "rankops")
    assert [f.split(":")[:2] for f in found] == [
        ["rankops/ingest/raw.py", "2"],
        ["rankops/serving/x.py", "3"],
        ["rankops/serving/x.py", "4"],
        ["rankops/serving/y.py", "1"],
    ]


def test_on_demand_features_and_the_rule_are_declared() -> None:
    """Every on-demand feature carries a function over declared, stored inputs; the rule's factors
    and the evaluation's item-age column come from declarations too."""
    stored = {f.name for e in registry.stored_entities() for f in registry.stored_features(e)}
    for f in registry.on_demand_features():
        assert f.function is not None and f.function.__module__ == transforms.__name__, f.name
        assert f.inputs and set(f.inputs) <= stored, f.name
    assert tuple(f.name for f in registry.FEATURES if f.rule is not None) == baseline.RULE_INPUTS
    assert set(baseline.RULE_INPUTS) <= set(registry.model_features())
    assert registry.feature(registry.measuring("item_age_days")).kind == "on_demand"


def test_sampled_rows_follow_the_declarations() -> None:
    """Rows drawn for every stored entity have one column per stored feature, in its valid range;
    an item's category code is its category's."""
    from rankops.features import on_demand, samples

    for entity in registry.stored_entities():
        declared = registry.stored_features(entity)
        rows = samples.stored_values(entity, 50, seed=1, now_s=1.8e9, categories=("toys", "home"))
        assert rows.shape == (50, len(declared))
        for column, f in zip(rows.T, declared, strict=True):
            low, high = f.valid_range
            assert np.isfinite(column).all() and ((column >= low) & (column <= high)).all(), f.name
    items = registry.stored_features("item")
    code_column = next(i for i, f in enumerate(items) if f.compute == registry.Attribute("category_code"))
    codes = samples.stored_values("item", 4, 0, 1.8e9, ("toys", "home"))[:, code_column]
    assert codes.tolist() == [on_demand.category_code(c) for c in ("toys", "home", "toys", "home")]
