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
