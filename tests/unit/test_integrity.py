"""The artifact digests the gate records: a folder and its tar.gz give the same digests, and every
difference (changed, missing, added file) is named and refused."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pytest

from rankops import integrity


def folder(tmp_path: Path) -> Path:
    root = tmp_path / "model"
    (root / "fallback").mkdir(parents=True)
    (root / "model.lgb").write_text("tree\n")
    (root / "fallback" / "model.lgb").write_text("small tree\n")
    return root


def test_a_folder_and_its_archive_have_the_same_digests(tmp_path: Path) -> None:
    root = folder(tmp_path)
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        tar.add(root, arcname=".")
    files = integrity.folder_digests(root)
    assert set(files) == {"model.lgb", "fallback/model.lgb"}
    assert integrity.archive_digests(buffer.getvalue()) == files
    integrity.verify_folder(root, integrity.tree_digest(files))


def test_every_difference_is_named_and_refused(tmp_path: Path) -> None:
    root = folder(tmp_path)
    gated = integrity.folder_digests(root)
    (root / "model.lgb").write_text("tree!\n")
    (root / "fallback" / "model.lgb").unlink()
    (root / "extra.pkl").write_bytes(b"\x80")
    with pytest.raises(integrity.IntegrityError) as refused:
        integrity.verify_files(integrity.folder_digests(root), gated, "model archive s3://b/m.tar.gz")
    assert str(refused.value) == (
        "model archive s3://b/m.tar.gz is not the model the gate judged "
        "(model.lgb changed, fallback/model.lgb missing, extra.pkl not gated); refusing it"
    )
    with pytest.raises(integrity.IntegrityError, match="refusing to serve a model the gate did not judge"):
        integrity.verify_folder(root, integrity.tree_digest(gated))
