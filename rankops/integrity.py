"""Load only what was gated: the SHA-256 of every model artifact, recorded by the gate and
checked by whoever loads or releases the model afterwards.

The evaluation job (the gate) hashes every file of the model folder it judged (the ranker's
model file, the fallback's, their compiled artifacts: what ``model.tar.gz`` carries) and records
the digests in its gate record and evaluation report, and the model file's digest on each
version as the tag ``gate.sha256``. Afterwards:

* the release step refuses a model archive whose files differ from the gated digests
  (:func:`verify_files`), and hands the archive's digest (:func:`tree_digest`) to the serving
  container as ``RANKOPS_MODEL_SHA256``;
* the container (and ``rankops serve --model-dir``) refuses to start on a folder whose digest
  differs (:func:`verify_folder`);
* a model loaded from the registry (``rankops serve``, its hot reload, a local release) is
  refused when its model file differs from the version's ``gate.sha256`` tag
  (:func:`rankops.ranker_model.load_model`). A refused reload leaves the current model serving.

Standard library only: the release Lambda imports this module.
"""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from collections.abc import Mapping
from pathlib import Path

from rankops.errors import ModelError

GATE_TAG = "gate.sha256"  # model version tag: SHA-256 of the model file the gate judged
MODEL_DIGEST_ENV = "RANKOPS_MODEL_SHA256"  # serving container: tree digest of /opt/ml/model
_CHUNK = 1 << 20


class IntegrityError(ModelError):
    """A model artifact is not the one the gate judged: it is refused, never loaded."""


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def folder_digests(folder: Path) -> dict[str, str]:
    """Relative path (``/``-separated) -> SHA-256 of every regular file under ``folder``."""
    return {
        path.relative_to(folder).as_posix(): sha256_file(path)
        for path in sorted(folder.rglob("*"))
        if path.is_file() and not path.is_symlink()
    }


def archive_digests(data: bytes) -> dict[str, str]:
    """The same for a ``model.tar.gz`` held in memory (what SageMaker extracts to ``/opt/ml/model``)."""
    out: dict[str, str] = {}
    try:
        with tarfile.open(fileobj=io.BytesIO(data)) as tar:
            for member in tar.getmembers():
                if member.isfile():
                    handle = tar.extractfile(member)
                    name = member.name.removeprefix("./")
                    out[name] = sha256_bytes(handle.read() if handle is not None else b"")
    except (tarfile.TarError, EOFError, OSError) as err:
        raise IntegrityError(f"the model archive is not a readable tar.gz: {err}") from None
    return dict(sorted(out.items()))


def tree_digest(digests: Mapping[str, str]) -> str:
    """One SHA-256 naming a whole set of files (``sha256sum``'s lines, sorted by path)."""
    lines = "".join(f"{digests[path]}  {path}\n" for path in sorted(digests))
    return sha256_bytes(lines.encode())


def differences(actual: Mapping[str, str], expected: Mapping[str, str]) -> list[str]:
    """What differs, one phrase per file: changed, missing or unexpected."""
    changed = [f"{p} changed" for p in sorted(expected) if p in actual and actual[p] != expected[p]]
    missing = [f"{p} missing" for p in sorted(expected) if p not in actual]
    extra = [f"{p} not gated" for p in sorted(actual) if p not in expected]
    return changed + missing + extra


def verify_files(actual: Mapping[str, str], expected: Mapping[str, str], label: str) -> None:
    """:class:`IntegrityError` naming every file of ``label`` that differs from the gated digests."""
    if not expected:
        raise IntegrityError(f"{label}: the gate recorded no artifact digests; refusing an unverified model")
    diff = differences(actual, expected)
    if diff:
        shown = ", ".join(diff[:5]) + (f" and {len(diff) - 5} more" if len(diff) > 5 else "")
        raise IntegrityError(f"{label} is not the model the gate judged ({shown}); refusing it")


def verify_folder(folder: Path, expected_tree: str) -> None:
    """:class:`IntegrityError` unless the files under ``folder`` have the tree digest ``expected_tree``."""
    actual = tree_digest(folder_digests(folder))
    if actual != expected_tree.strip().lower():
        raise IntegrityError(
            f"model folder {folder}: SHA-256 of its files {actual[:16]}... is not the gated {expected_tree[:16]}... "
            f"({MODEL_DIGEST_ENV}); refusing to serve a model the gate did not judge"
        )


def verify_bytes(data: bytes, expected: str, label: str) -> None:
    """:class:`IntegrityError` unless ``data`` has the SHA-256 ``expected``."""
    actual = sha256_bytes(data)
    if actual != expected.strip().lower():
        raise IntegrityError(
            f"{label}: SHA-256 {actual[:16]}... is not the {expected[:16]}... the gate recorded ({GATE_TAG}); "
            "refusing a model the gate did not judge"
        )


def as_json(digests: Mapping[str, str]) -> str:
    return json.dumps(dict(sorted(digests.items())), separators=(",", ":"))
