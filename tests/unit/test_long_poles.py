"""`make test`'s order: the files that keep a worker busy for minutes start first (tests/conftest.py)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from tests.conftest import LONG_POLES, REPO, long_poles_first


@dataclass
class _Item:
    fspath: Path
    name: str


def test_every_long_pole_is_a_test_file_of_the_suite() -> None:
    for path in LONG_POLES:
        assert (REPO / path).is_file(), f"{path} is listed in LONG_POLES but does not exist (renamed?)"


def test_long_poles_come_first_in_their_order_and_every_file_stays_whole_and_in_order() -> None:
    files = ["tests/unit/test_a.py", LONG_POLES[1], "tests/e2e/test_b.py", LONG_POLES[0], "tests/unit/test_c.py"]
    items = [_Item(REPO / f, f"{f}::{n}") for f in files for n in ("one", "two")]
    long_poles_first(items)  # type: ignore[arg-type]
    assert [i.name for i in items] == [
        f"{LONG_POLES[0]}::one", f"{LONG_POLES[0]}::two", f"{LONG_POLES[1]}::one", f"{LONG_POLES[1]}::two",
        "tests/unit/test_a.py::one", "tests/unit/test_a.py::two", "tests/e2e/test_b.py::one",
        "tests/e2e/test_b.py::two", "tests/unit/test_c.py::one", "tests/unit/test_c.py::two",
    ]  # fmt: skip
