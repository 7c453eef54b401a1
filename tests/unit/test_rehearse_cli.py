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
