"""Bad input to the streaming commands: one line naming the problem, exit status 2."""

from __future__ import annotations

import pytest

from rankops.lake import Lake
from rankops.stream_events import StreamSpec, feed
from tests.conftest import make_settings
from tests.unit.test_cli_errors import fail


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["features", "stream", "--for", "5s"], "stream source"),
        (["features", "stream", "--for", "-3"], "must be more than zero"),
        (["features", "stream", "--for", "soon"], "invalid duration 'soon'"),
        (["generate", "--stream", "--rate", "0"], "must be at least 1"),
        (["generate", "--stream", "--rate", "many"], "invalid number 'many'"),
    ],
)
def test_bad_streaming_input_is_one_line(argv, expected, tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    assert expected in fail(["--home", str(tmp_path / "home"), *argv], capsys)


def test_the_generator_writes_one_atomic_file_a_second(tmp_path) -> None:  # type: ignore[no-untyped-def]
    lake = Lake.from_settings(make_settings(tmp_path / "home"))
    clock = iter(float(t) for t in (0, 0, 0, 1, 1, 1, 2, 2, 2, 3))
    folder = lake.uri("raw", "stream", "events")
    written = feed(lake, folder, 50, 2, StreamSpec(items=10, sellers=2), clock=lambda: next(clock))
    files = sorted(p.name for p in (tmp_path / "home" / "lake" / "raw" / "stream" / "events").iterdir())
    assert written == 100 and len(files) == 2 and all(f.endswith(".parquet") for f in files)
