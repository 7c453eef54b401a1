"""Every repository path and module README.md and docs/*.md name exists.

A doc that names a file the code no longer has sends a newcomer nowhere. Read: backticked
paths whose first part is a top-level entry of the repository (`rankops/x.py`, `docs/y.md`,
`infra/`), paths relative to the package (`features/spark.py`), bare `name.py`/`name.md`
(some tracked file has that name), dotted modules (`rankops.release.local`, with an optional
top-level attribute: `rankops.registry.promote`) and relative Markdown links. Runtime
locations (`RANKOPS_HOME/...`, `/opt/ml/...`, lake paths, placeholders with `<...>`) and metric
names (`rankops/StreamFreshnessSeconds`) are not repository paths and are skipped.
"""

from __future__ import annotations

import ast
import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TOKEN = re.compile(r"`([^`\n]+)`")
LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")
DOTTED = re.compile(r"(rankops|benchmarks|infra|lambdas|emr_jobs|sagemaker_jobs|stepfunctions|tests)(\.\w+)+")
NOT_A_PATH = re.compile(r"[\s<>{}*$=\[\]|()]")


def _tracked() -> list[str]:
    out = subprocess.run(["git", "ls-files"], capture_output=True, text=True, cwd=ROOT, check=True).stdout
    return out.split()


def _module_names(path: Path) -> set[str]:
    """Top-level names a module defines (functions, classes, assignments, imports)."""
    names: set[str] = set()
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names |= {t.id for t in targets if isinstance(t, ast.Name)}
        elif isinstance(node, ast.Import | ast.ImportFrom):
            names |= {(a.asname or a.name).split(".")[0] for a in node.names}
    return names


def _dotted_exists(name: str) -> bool:
    parts = name.split(".")
    for cut in range(len(parts), 0, -1):
        base = ROOT.joinpath(*parts[:cut])
        module = base.with_suffix(".py") if base.with_suffix(".py").exists() else base / "__init__.py"
        if module.exists():
            rest = parts[cut:]
            return not rest or (len(rest) == 1 and rest[0] in _module_names(module))
    return False


def _expand(raw: str) -> list[str]:
    """The path(s) a token names: `a/{b,c}.py` is `a/b.py` and `a/c.py`; `x.py::f` and
    `x.py: f` name `x.py`; `f(...)` names `f`."""
    text = raw.split("::")[0].split(": ")[0].split("(")[0].strip().rstrip(".,;:")
    brace = re.fullmatch(r"([^{}]*)\{([\w.,/-]+)\}([^{}]*)", text)
    return [brace[1] + part + brace[3] for part in brace[2].split(",")] if brace else [text]


def missing_paths(docs: list[Path], tracked: list[str]) -> list[str]:
    top = {p.split("/")[0] for p in tracked}
    package = {p.split("/")[1] for p in tracked if p.startswith("rankops/") and p.count("/") >= 1}
    missing = []
    for doc in docs:
        for no, line in enumerate(doc.read_text().splitlines(), 1):
            links = {m.group(1) for m in LINK.finditer(line)}
            tokens = [m.group(1) for m in TOKEN.finditer(line)] + sorted(links)
            for raw, text in ((token, text) for token in tokens for text in _expand(token)):
                first = text.split("/")[0]
                if raw in links and not text.startswith(("http:", "https:", "mailto:")):
                    ok = (doc.parent / text).exists()
                elif not text or text.startswith(("/", ".", "-")) or NOT_A_PATH.search(text):
                    continue
                elif any(part != part.lower() and "." not in part for part in text.split("/")):
                    continue  # a metric name (`rankops/StreamFreshnessSeconds`): folders and modules are lower case
                elif first in top and ("/" in text or "." in text):  # a file (`rankops.toml`) or a module
                    ok = (ROOT / text).exists() or (bool(DOTTED.fullmatch(text)) and _dotted_exists(text))
                elif DOTTED.fullmatch(text):
                    ok = _dotted_exists(text)
                elif "/" in text and first in package:
                    ok = (ROOT / "rankops" / text).exists()
                elif re.fullmatch(r"[\w/.-]+\.(py|md)", text):
                    ok = any(p == text or p.endswith("/" + text) for p in tracked)
                else:
                    continue
                if not ok:
                    where = doc.relative_to(ROOT) if doc.is_relative_to(ROOT) else doc.name
                    missing.append(f"{where}:{no}: {text}")
    return missing


def test_every_path_the_docs_name_exists() -> None:
    docs = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    missing = missing_paths(docs, _tracked())
    assert not missing, "docs name paths or modules that do not exist:\n" + "\n".join(missing)


def test_the_check_reports_a_missing_path(tmp_path: Path) -> None:
    """Not vacuous: missing files, folders, modules, attributes and links are reported; runtime
    locations and existing paths are not."""
    doc = tmp_path / "doc.md"
    doc.write_text(
        "See `rankops/features/registry.py` and `rankops/{nope,synthetic}.py`.\n"
        "Folders: `infra/` and `lambdas/nope/`; relative: `features/spark.py`, `features/nope.py`.\n"
        "Modules: `rankops.registry.promote`, `rankops.registry.nope`, `rankops.nope`.\n"
        "Runtime: `RANKOPS_HOME/release/shadow/`, `/opt/ml/model`, `<version>/_meta/`, `rankops/SomeMetric`.\n"
        f"[ok]({ROOT / 'README.md'}) [gone](nowhere.md) [web](https://example.com)\n"
    )
    missing = missing_paths([doc], _tracked())
    assert [m.split(":")[1] for m in missing] == ["1", "2", "2", "3", "3", "5"]
    names = [m.rsplit(": ", 1)[1] for m in missing]
    assert names == [
        "rankops/nope.py",
        "lambdas/nope/",
        "features/nope.py",
        "rankops.registry.nope",
        "rankops.nope",
        "nowhere.md",
    ]
