"""`rankops simulate` refuses bad arguments with one line naming the problem, before touching the home."""

from __future__ import annotations

from pathlib import Path

import pytest

from rankops.cli import main


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--days", "0"], "--days must be between 1 and 31, got 0"),
        (["--drift-every-h", "5"], "--drift-every-h must divide 24"),
        (["--campaign-share", "0"], "--campaign-share must be in (0, 1], got 0.0"),
        (["--requests-per-day", "3"], "--requests-per-day must be at least 24, got 3"),
        (["--canary-mde", "0"], "--canary-mde must be in (0, 1), got 0.0"),
        (["--bad-challenger-day", "-2"], "--bad-challenger-day must be 0 or later, got -2"),
        ([], "synthetic.json not found: simulation needs a synthetic marketplace (run `rankops demo` first)"),
    ],
)
def test_bad_arguments_are_named(tmp_path: Path, capsys, args: list[str], message: str) -> None:  # type: ignore[no-untyped-def]
    assert main(["--home", str(tmp_path / "home"), "simulate", *args]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "home" / "simulate").exists()
