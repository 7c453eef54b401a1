"""The command line: every listed command works, has help with an example, and
bad input gives one line on stderr and exit status 2."""

import argparse
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from rankops.cli import COMMANDS, build_parser, main

COMMAND_NAMES = [
    "generate",
    "ingest",
    "features",
    "train",
    "models",
    "pipeline",
    "serve",
    "release",
    "rehearse",
    "ope",
    "drift",
    "online-metrics",
    "simulate",
    "demo",
    "config",
]


def run_cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "rankops.cli", *args], capture_output=True, text=True, cwd=cwd, timeout=120, check=False
    )


def test_help_lists_exactly_the_registered_commands() -> None:
    parser = build_parser()
    (sub,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    assert list(sub.choices) == COMMAND_NAMES
    assert len(COMMANDS) == len(COMMAND_NAMES)
    helptext = parser.format_help()
    listing = helptext.split("\n  COMMAND\n", 1)[1].split("\n\n", 1)[0]
    listed = re.findall(r"^    (\S+)", listing, flags=re.MULTILINE)
    assert listed == COMMAND_NAMES, "the help lists exactly the registered commands, in order"


@pytest.mark.parametrize(
    "argv",
    [
        ["generate"],
        ["ingest"],
        ["features", "build"],
        ["features", "materialize"],
        ["features", "get"],
        ["train"],
        ["models", "list"],
        ["pipeline", "run"],
        ["pipeline", "history"],
        ["pipeline", "render"],
        ["models", "archive"],
        ["serve"],
        ["release", "shadow"],
        ["release", "canary"],
        ["release", "promote"],
        ["release", "rollback"],
        ["release", "status"],
        ["simulate"],
        ["demo"],
        ["config"],
        ["features"],
        ["models"],
        ["pipeline"],
        ["release"],
    ],
)
def test_each_command_has_help_with_an_example(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main([*argv, "--help"])
    assert exited.value.code == 0
    assert re.search(rf"examples?:\n  rankops .*\b{argv[0]}\b", capsys.readouterr().out)


def test_bad_arguments_are_one_line_and_exit_2(tmp_path: Path) -> None:
    result = run_cli("--home", str(tmp_path), "generate", "--events", "many")
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0
    assert "--events: invalid int value: 'many'" in result.stderr


def test_unknown_command_is_one_line(tmp_path: Path) -> None:
    result = run_cli("--home", str(tmp_path), "frobnicate")
    assert result.returncode == 2 and result.stderr.count("\n") == 1
    assert "invalid choice: 'frobnicate'" in result.stderr


def test_bad_configuration_is_one_line_naming_the_key(tmp_path: Path) -> None:
    (tmp_path / "rankops.toml").write_text("[env.local]\nserving.port = 'eighty'\n")
    result = run_cli("--home", str(tmp_path / "h"), "config", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.startswith("rankops: error: invalid configuration: serving.port:")
    assert result.stderr.count("\n") == 1


def test_domain_errors_are_one_line(tmp_path: Path) -> None:
    result = run_cli("--home", str(tmp_path), "generate", "--events", "3")
    assert result.returncode == 2
    assert result.stderr == "rankops: error: --events must be at least 30 (one search shows up to that many items)\n"


def test_config_prints_the_environment(tmp_path: Path) -> None:
    result = run_cli("--home", str(tmp_path), "--env", "prod", "config")
    assert result.returncode == 0, result.stderr
    assert '"approval_required": true' in result.stdout


def test_generate_then_lookup_missing_store_is_clear(tmp_path: Path) -> None:
    result = run_cli("--home", str(tmp_path), "generate", "--events", "2000", "--days", "1")
    assert result.returncode == 0, result.stderr
    assert "events" in result.stdout
    lookup = run_cli("--home", str(tmp_path), "features", "get", "item", "i-1")
    assert lookup.returncode == 2
    assert "run `rankops features materialize`" in lookup.stderr
    unknown = run_cli("--home", str(tmp_path), "features", "get", "planet", "p-1")
    assert unknown.returncode == 2 and "unknown entity 'planet'" in unknown.stderr


def test_models_list_on_an_empty_registry(tmp_path: Path) -> None:
    result = run_cli("--home", str(tmp_path), "models", "list")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "no registered models yet; run `rankops train`\n"


def test_generate_refuses_to_mix_datasets_unless_replace(tmp_path: Path) -> None:
    from rankops.lake import ZONES, Lake

    lake = Lake({z: str(tmp_path / "lake" / z) for z in ZONES})

    def snapshot() -> tuple[set[str], int, int, dict[str, object]]:
        items = lake.read("raw", "items", ["item_id"])
        runs = {p.run_id for ds in ("events", "items") for p in lake.partitions("raw", ds)}
        meta = lake.read_json(lake.uri("raw", "_meta", "synthetic.json"))
        return runs, lake.read("raw", "events").num_rows, items.num_rows, meta

    first = run_cli("--home", str(tmp_path), "generate", "--events", "2000", "--days", "2")
    assert first.returncode == 0, first.stderr
    before = snapshot()
    assert len(before[0]) == 1 and before[1] == 2000

    again = run_cli("--home", str(tmp_path), "generate", "--events", "3000", "--days", "1", "--seed", "8")
    assert again.returncode == 2 and again.stderr.count("\n") == 1
    assert "already holds" in again.stderr and "pass --replace" in again.stderr
    assert snapshot() == before, "a refused generate leaves the stored dataset as it was"

    replaced = run_cli(
        "--home", str(tmp_path), "generate", "--events", "3000", "--days", "1", "--seed", "8", "--start", "2026-12-01",
        "--replace",
    )  # fmt: skip
    assert replaced.returncode == 0, replaced.stderr
    runs, events, items, meta = snapshot()
    assert len(runs) == 1 and runs != before[0], "readers see exactly one dataset: the new one"
    assert events == 3000 == meta["summary"]["events"]  # type: ignore[index]
    item_ids = lake.read("raw", "items", ["item_id"])["item_id"].to_pylist()
    assert len(item_ids) == len(set(item_ids)) == items
    assert {p.values["dt"] for p in lake.partitions("raw", "events")} == {"2026-12-01"}
    assert json.dumps(meta["run_id"]).strip('"') in runs
