"""The rehearsal's moto server answers service lookups from one listing of moto's package (not a
folder scan per request), with the same names, and puts moto's own lookup back when it stops."""

from __future__ import annotations

import os

import pytest
from moto import backends

from rankops.rehearse import servers


def test_service_names_are_listed_once_and_the_same(monkeypatch: pytest.MonkeyPatch) -> None:
    original = backends.list_of_moto_modules
    listed = list(original())
    assert "s3" in listed and "stepfunctions" in listed
    with servers._listed_services_once():
        assert list(backends.list_of_moto_modules()) == listed

        def no_scan(path: str) -> list[str]:
            raise AssertionError(f"moto's folder scanned again: {path}")

        monkeypatch.setattr(os, "listdir", no_scan)
        assert list(backends.list_of_moto_modules()) == listed, "answered without listing the folder"
        assert "s3" in backends.list_of_moto_modules(), "the dispatcher's membership test"
        monkeypatch.undo()
    assert backends.list_of_moto_modules is original, "moto's own function back after the server stops"


def test_moto_server_restores_the_lookup_when_it_stops() -> None:
    original = backends.list_of_moto_modules
    with servers.moto_server():
        assert backends.list_of_moto_modules is not original
    assert backends.list_of_moto_modules is original
