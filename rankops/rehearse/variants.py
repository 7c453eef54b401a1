"""One real inference server per endpoint variant, started as SageMaker starts the container.

SageMaker downloads the Model's ``ModelDataUrl`` (``model.tar.gz``), extracts it to
``/opt/ml/model`` and runs the image with ``serve``, the container's Environment set, HTTP on
8080. Here: the archive comes from (moto) S3, is extracted under the emulator's folder
(``SM_MODEL_DIR``), and the ``serve`` console script runs with the Model's Environment plus the
local AWS settings, on a free port (``SAGEMAKER_BIND_TO_PORT``).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tarfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rankops.background import free_port
from rankops.errors import RankopsError

HOST = "127.0.0.1"


@dataclass
class Answer:
    status: int
    body: bytes
    content_type: str
    latency_us: int


class VariantServer:
    """The ``serve`` process of one variant (one Model) of an endpoint."""

    def __init__(
        self, folder: Path, model_data_url: str, environment: Mapping[str, str], s3: Any,
        on_line: Callable[[str], object] | None = None,
    ) -> None:  # fmt: skip
        self.folder = folder
        self.model_data_url = model_data_url
        folder.mkdir(parents=True, exist_ok=True)
        model_dir = folder / "model"
        bucket, _, key = model_data_url.removeprefix("s3://").partition("/")
        archive = folder / "model.tar.gz"
        try:
            s3.download_file(bucket, key, str(archive))
        except Exception as err:
            raise RankopsError(f"cannot download the model data {model_data_url}: {err}") from err
        with tarfile.open(archive) as tar:
            tar.extractall(model_dir, filter="data")
        self.port = free_port(0)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("RANKOPS_", "PROMETHEUS_", "SM_"))}
        env.update(environment)
        env.update(
            SM_MODEL_DIR=str(model_dir),
            SAGEMAKER_BIND_TO_PORT=str(self.port),
            SAGEMAKER_MODEL_SERVER_WORKERS="1",
            RANKOPS_HOME=str(folder / "home"),
        )
        serve = Path(sys.executable).with_name("serve")
        self._log = (folder / "serve.log").open("ab")
        self.proc = subprocess.Popen(  # noqa: S603 - the container's own entrypoint
            [str(serve), "serve"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
        )
        # the container's output: kept in serve.log, and each line handed on (SageMaker ships it to CloudWatch Logs)
        self._reader = threading.Thread(target=self._read, args=(on_line,), daemon=True, name=f"serve-log-{self.port}")
        self._reader.start()

    def _read(self, on_line: Callable[[str], object] | None) -> None:
        assert self.proc.stdout is not None
        for raw in self.proc.stdout:
            self._log.write(raw)
            self._log.flush()
            if on_line is not None:
                try:
                    on_line(raw.decode("utf-8", errors="replace"))
                except Exception as err:  # a shipping fault is written down, never kills the reader
                    self._log.write(f"rehearsal: could not ship this line: {err!r}\n".encode())

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def wait_ready(self, timeout_s: float = 120.0) -> None:
        """Until ``GET /ping`` answers 200 (the health check SageMaker makes before routing)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                tail = (self.folder / "serve.log").read_text(errors="replace")[-800:]
                raise RankopsError(f"the variant's serve process exited ({self.proc.returncode}): {tail}")
            try:
                with urllib.request.urlopen(f"{self.url}/ping", timeout=2) as answer:  # noqa: S310 - local
                    if answer.status == 200:
                        return
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            time.sleep(0.1)
        raise RankopsError(f"the variant's serve process did not pass /ping within {timeout_s:.0f} s")

    def invoke(self, body: bytes, content_type: str, accept: str) -> Answer:
        request = urllib.request.Request(  # noqa: S310 - local
            f"{self.url}/invocations",
            data=body,
            method="POST",
            headers={"Content-Type": content_type, "Accept": accept},
        )
        start = time.perf_counter()
        try:
            with urllib.request.urlopen(request, timeout=30) as answer:  # noqa: S310 - local
                data, status, ctype = answer.read(), answer.status, answer.headers.get("Content-Type", accept)
        except urllib.error.HTTPError as err:
            data, status, ctype = err.read(), err.code, err.headers.get("Content-Type", accept)
        except (urllib.error.URLError, ConnectionError, TimeoutError) as err:
            data, status, ctype = str(err).encode(), 502, "text/plain"
        return Answer(status, data, ctype, int((time.perf_counter() - start) * 1e6))

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._reader.join(timeout=10)
        self._log.close()
