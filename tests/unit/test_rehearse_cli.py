"""`rankops rehearse`'s bad input: one line on stderr, exit 2, before anything is built."""

from __future__ import annotations

import pytest

from rankops.cli import main


def _exit_code(argv: list[str]) -> int:
    try:
        return main(argv)
    except SystemExit as stopped:  # argparse's own refusals
        return int(stopped.code or 0)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["rehearse", "--env", "prod", "--scenario", "chaos-monkey"], "unknown scenario 'chaos-monkey'"),
        (["rehearse", "--env", "local"], "unknown environment 'local' for a rehearsal"),
        (["rehearse", "--env", "qa"], "invalid choice: 'qa'"),
    ],
)
def test_unknown_scenario_or_environment_is_one_line_exit_2(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code = _exit_code(argv)
    err = capsys.readouterr().err
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1, err


def test_a_failed_scenario_is_one_line_naming_scenario_and_state_exit_2(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from rankops.rehearse import scenarios

    def fails(*_args: object, **_kwargs: object) -> list[object]:
        raise scenarios.ScenarioFailed("alarm-after-promote", "PromotedWait", "the endpoint was not rolled back")

    monkeypatch.setattr(scenarios, "run_scenarios", fails)
    code = _exit_code(["rehearse", "--env", "prod", "--scenario", "alarm-after-promote"])
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert "scenario alarm-after-promote: state PromotedWait: the endpoint was not rolled back" in err


@pytest.mark.parametrize(("given", "seen"), [(None, "PASSIVE"), ("ACTIVE", "ACTIVE")])
def test_lightgbm_threads_sleep_in_the_rehearsal_process_unless_the_environment_says(
    given: str | None, seen: str
) -> None:
    """The rehearsal trains its bootstrap model in its own process, beside its other processes:
    ``OMP_WAIT_POLICY`` defaults to PASSIVE there before LightGBM loads (a fresh interpreter, as
    the CLI runs); a value in the environment wins."""
    import os
    import subprocess
    import sys

    probe = (
        "import os, sys\n"
        "from rankops.cli import main\n"
        "main(['rehearse', '--env', 'local'])\n"  # refused after the default is set, before anything is built
        "print(os.environ.get('OMP_WAIT_POLICY'), 'lightgbm' in sys.modules)\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    if given is not None:
        env["OMP_WAIT_POLICY"] = given
    done = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, timeout=120)
    assert done.stdout.split() == [seen, "False"], done.stderr
