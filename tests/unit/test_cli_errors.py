"""Bad input to the command line: one line on stderr naming the problem, exit status 2,
and nothing already stored is lost or half-written."""

from __future__ import annotations

import errno
import os
import subprocess
import sys
from collections.abc import Callable
from datetime import date
from pathlib import Path

import pytest

from rankops.cli import main
from rankops.config import load_settings
from rankops.lake import Lake
from tests.conftest import REPO

Setup = Callable[[Path], list[str]]


def fail(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    """Run the CLI in-process; assert exit status 2 and exactly one line on stderr; return it."""
    try:
        code = main(argv)
    except SystemExit as exited:  # argparse's own errors
        code = exited.code
    err = capsys.readouterr().err
    assert code == 2, err
    assert err.endswith("\n") and err.count("\n") == 1, err
    assert err.startswith("rankops"), err
    assert "Traceback" not in err
    return err


def home(tmp: Path) -> str:
    return str(tmp / "home")


def config(text: str | bytes, *argv: str) -> Setup:
    def setup(tmp: Path) -> list[str]:
        path = tmp / "rankops.toml"
        path.write_bytes(text if isinstance(text, bytes) else text.encode())
        return ["--home", home(tmp), "--config", str(path), *(argv or ("config",))]

    return setup


def config_home_3(tmp: Path) -> list[str]:
    (tmp / "rankops.toml").write_text("[defaults]\nhome = 3\n")
    return ["--config", str(tmp / "rankops.toml"), "config"]  # no --home: the file's home applies


def args(*argv: str) -> Setup:
    return lambda tmp: ["--home", home(tmp), *argv]


def home_is_a_file(tmp: Path) -> list[str]:
    (tmp / "state").write_text("not a folder")
    return ["--home", str(tmp / "state"), "generate", "--events", "100"]


CASES: dict[str, tuple[Setup, str]] = {
    "generate negative seed": (args("generate", "--seed", "-1"), "--seed must be a non-negative integer, got -1"),
    "config negative seed": (
        config("[defaults]\nsynthetic.seed = -3\n", "generate"),
        "synthetic.seed: Input should be greater than or equal to 0",
    ),
    "config bad start": (config("[defaults]\nsynthetic.start = 'soon'\n", "generate"), "synthetic.start:"),
    "generate huge days": (args("generate", "--days", "10000000"), "--days must be between 1 and 366"),
    "generate zero days": (args("generate", "--days", "0"), "--days must be between 1 and 366, got 0"),
    "generate start at the end of time": (args("generate", "--start", "9999-12-30"), "ends after 9999-12-31"),
    "generate start before the epoch": (args("generate", "--start", "1960-01-01"), "--start 1960-01-01 is too early"),
    "generate bad start": (args("generate", "--start", "2026-13-01"), "--start must be a date like"),
    "serve port too large": (args("serve", "--background", "--port", "99999"), "invalid port 99999"),
    "serve negative port": (args("serve", "--background", "--port", "-1"), "invalid port -1"),
    "serve port zero": (args("serve", "--port", "0"), "invalid port 0: expected 1-65535"),
    "serve workers zero": (args("serve", "--workers", "0"), "--workers must be at least 1"),
    "home is a file": (home_is_a_file, "is not a folder (from --home)"),
    "defaults is not a table": (config("defaults = 3\n"), "'defaults' must be a table"),
    "env is not a table": (config("env = 3\n"), "'env' must be a table"),
    "env.local is not a table": (config("[env]\nlocal = 3\n"), "env.local must be a table"),
    "home in config is not a path": (config_home_3, "home: expected a folder path, got 3 (from rankops.toml"),
    "config is not UTF-8": (config(b"\xff\xfe[defaults]\n"), "rankops.toml: not UTF-8 text"),
    "pipeline unknown --set key": (args("pipeline", "run", "--set", "gate.nosuch=1"), "gate.nosuch: Extra inputs"),
    "pipeline bad --set value": (args("pipeline", "run", "--set", "gate.ndcg_floor=high"), "gate.ndcg_floor:"),
    "pipeline --set into a value": (
        args("pipeline", "run", "--set", "gate.ndcg_floor=1", "--set", "gate.ndcg_floor.x=2"),
        "'gate.ndcg_floor' is not a section",
    ),
    "pipeline --set loosens the gate": (
        args("pipeline", "run", "--set", "gate.ndcg_floor=0.1"),
        "override gate.ndcg_floor=0.1 would loosen the gate (below the deployed 0.3)",
    ),
    "pipeline --set a release setting": (
        args("pipeline", "run", "--set", "release.canary_steps=[1.0]"),
        "override 'release.canary_steps' is not allowed in a pipeline run",
    ),
    "pipeline --input sets the soak": (
        args("pipeline", "run", "--input", '{"soak_seconds": 0}'),
        "execution input ['soak_seconds'] cannot be set per run",
    ),
    "pipeline --input not an object": (args("pipeline", "run", "--input", "3"), "--input must be a JSON object"),
    "train on an empty home": (args("train"), "has no committed events; run `rankops generate` or `ingest`"),
}


@pytest.mark.parametrize("case", CASES, ids=list(CASES))
def test_bad_input_is_one_line_exit_2(
    case: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import rankops.pipeline.local
    import rankops.spark_session

    def must_not_run(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("bad input must be rejected before any work starts")

    monkeypatch.setattr(rankops.pipeline.local, "run_local", must_not_run)
    monkeypatch.setattr(rankops.spark_session, "get_spark", must_not_run)
    setup, expected = CASES[case]
    err = fail(setup(tmp_path), capsys)
    assert expected in err
    assert not (tmp_path / "home" / "lake").exists(), "nothing may be written for bad input"
    assert not (tmp_path / "home" / "pipeline").exists(), "no execution may be recorded for bad input"


def test_os_errors_are_one_line_naming_the_path(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from rankops.cli import config_cmd

    def denied(_args: object) -> int:
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(tmp_path / "locked"))

    monkeypatch.setattr(config_cmd, "run", denied)
    err = fail(["--home", home(tmp_path), "config"], capsys)
    assert err == f"rankops: error: {tmp_path / 'locked'}: Permission denied\n"


def test_decoding_errors_are_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from rankops.cli import config_cmd

    def latin1(_args: object) -> int:
        b"caf\xe9".decode()
        return 0

    monkeypatch.setattr(config_cmd, "run", latin1)
    assert "cannot decode a text file" in fail(["--home", home(tmp_path), "config"], capsys)


def test_environment_variable_into_a_value_is_named(tmp_path: Path) -> None:
    from rankops.errors import ConfigError

    environ = {"RANKOPS_SERVING__PORT": "9000", "RANKOPS_SERVING__PORT__X": "1"}
    with pytest.raises(ConfigError, match="RANKOPS_SERVING__PORT is set to a value, not a section"):
        load_settings(home=tmp_path, config_file=REPO / "rankops.toml", environ=environ)


# -- the demo checks everything before it resets the home -------------------------------------
def populated_home(root: Path) -> Path:
    home_dir = root / "home"
    for sub in ("lake/raw/events", "online", "mlflow", "release", "sagemaker", "pipeline"):
        (home_dir / sub).mkdir(parents=True)
        (home_dir / sub / "keep.txt").write_text(sub)
    return home_dir


def kept(home_dir: Path) -> list[str]:
    return sorted(str(p.relative_to(home_dir)) for p in home_dir.rglob("keep.txt"))


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["demo", "--events", "5"], "--events must be at least 30"),
        (["demo", "--events", "0"], "--events must be at least 30"),
        (["demo", "--days", "0"], "--days must be between 1 and 366, got 0"),
        (["demo", "--days", "400"], "--days must be between 1 and 366, got 400"),
        (["demo", "--seed", "-1"], "--seed must be a non-negative integer"),
        (["--env", "dev", "demo"], "the demo runs the local platform only"),
    ],
    ids=["events 5", "events 0", "days 0", "days 400", "seed -1", "env dev"],
)
def test_demo_with_bad_arguments_leaves_the_home_untouched(
    argv: list[str], expected: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    home_dir = populated_home(tmp_path)
    before = kept(home_dir)
    assert expected in fail(["--home", str(home_dir), *argv], capsys)
    assert kept(home_dir) == before and len(before) == 6


def test_demo_with_a_bad_configuration_leaves_the_home_untouched(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    home_dir = populated_home(tmp_path)
    cfg = tmp_path / "rankops.toml"
    cfg.write_text("[defaults]\nsynthetic.start = '2026-02-30'\n")
    assert "synthetic.start" in fail(["--home", str(home_dir), "--config", str(cfg), "demo"], capsys)
    assert len(kept(home_dir)) == 6


def test_demo_refuses_a_lake_outside_the_home_that_holds_data(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from rankops.synthetic import MarketplaceSpec, generate, write_marketplace

    outside = tmp_path / "shared-lake"
    settings = load_settings(
        home=tmp_path / "other", config_file=REPO / "rankops.toml", environ={"RANKOPS_LAKE__ROOT": str(outside)}
    )
    write_marketplace(Lake.from_settings(settings), generate(MarketplaceSpec(500, 1, 1, date(2026, 11, 1))))
    home_dir = populated_home(tmp_path)
    monkeypatch.setenv("RANKOPS_LAKE__ROOT", str(outside))
    assert "already holds" in fail(["--home", str(home_dir), "demo", "--events", "1000"], capsys)
    assert len(kept(home_dir)) == 6


def test_demo_spec_takes_zero_as_a_value_and_none_as_the_default(tmp_path: Path) -> None:
    from rankops.demo import demo_spec
    from rankops.errors import DataError

    settings = load_settings(home=tmp_path, config_file=REPO / "rankops.toml", environ={})
    spec = demo_spec(settings, None, None, None)
    assert (spec.events, spec.days, spec.seed) == (300_000, 5, 7)
    assert demo_spec(settings, 1000, 2, 0).seed == 0
    with pytest.raises(DataError, match="--days"):
        demo_spec(settings, None, 0, None)


def test_demo_help_says_what_it_removes(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["demo", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "starts from a clean home" in out
    assert "removes lake/, online/, mlflow/, release/, sagemaker/, pipeline/ under --home" in out


# -- app.py (the CDK entry point) --------------------------------------------------------------
def test_cdk_app_with_a_bad_environment_exits_2_with_one_error_line() -> None:
    pytest.importorskip("aws_cdk")
    env = {**os.environ, "CDK_CONTEXT_JSON": '{"env": "bogus"}', "PYTHONPATH": str(REPO)}
    result = subprocess.run(
        [sys.executable, "app.py"], cwd=REPO, env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 2, result.stderr
    errors = [line for line in result.stderr.splitlines() if "error" in line]
    assert errors == ["rankops: error: cdk context env='bogus' is not deployable; use one of dev, staging, prod"]
    assert "Traceback" not in result.stderr


def test_a_valid_demo_resets_the_home_then_generates(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The other side of the checks above: good arguments do reset the home (stopped at Spark)."""
    import rankops.demo

    class Stop(Exception):
        pass

    def stop_here(*_args: object, **_kwargs: object) -> None:
        raise Stop

    monkeypatch.setattr(rankops.demo, "get_spark", stop_here)
    home_dir = populated_home(tmp_path)
    settings = load_settings(home=home_dir, config_file=REPO / "rankops.toml", environ={})
    with pytest.raises(Stop):
        rankops.demo.run_demo(settings, events=1000, days=1, seed=0)
    assert kept(home_dir) == []
    lake = Lake.from_settings(settings)
    assert len({p.run_id for p in lake.partitions("raw", "events")}) == 1
    assert lake.read("raw", "events").num_rows == 1000
