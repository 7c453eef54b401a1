"""Run the local inference server as a background process and find it again.

The demo leaves a server running for the user to query; its pid, port and log
live under ``RANKOPS_HOME/run`` so ``rankops serve --stop`` can end it and two
homes never collide.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from rankops.errors import RankopsError


def state_file(home: Path) -> Path:
    return home / "run" / "server.json"


def free_port(preferred: int, host: str = "127.0.0.1") -> int:
    """``preferred`` if it is free, else any free port."""
    for candidate in (preferred, 0):
        with socket.socket() as sock:
            try:
                sock.bind((host, candidate))
            except OSError:
                continue
            return int(sock.getsockname()[1])
    raise RankopsError("no free TCP port for the inference server")


def wait_until_ready(url: str, timeout_s: float, proc: subprocess.Popen[bytes] | None = None) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RankopsError(f"the inference server exited with status {proc.returncode}; see its log")
        try:
            with urllib.request.urlopen(f"{url}/ping", timeout=1) as response:  # noqa: S310 - our own local server
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            time.sleep(0.2)
    raise RankopsError(f"the inference server at {url} did not answer /ping within {timeout_s:.0f}s")


def status(home: Path) -> dict[str, Any] | None:
    """The running server's state, or ``None`` (stale state files are removed)."""
    path = state_file(home)
    if not path.is_file():
        return None
    state: dict[str, Any] = json.loads(path.read_text())
    try:
        os.kill(int(state["pid"]), 0)
    except (ProcessLookupError, PermissionError):
        path.unlink(missing_ok=True)
        return None
    return state


def start(home: Path, env: str, host: str, port: int, timeout_s: float = 90.0) -> dict[str, Any]:
    """Start ``rankops serve`` detached, wait for ``/ping``, record pid and port."""
    stop(home)
    port = free_port(port, host)
    log = home / "run" / "server.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    cmd = [
        sys.executable,
        "-m",
        "rankops.cli",
        "--home",
        str(home),
        "--env",
        env,
        "serve",
        "--host",
        host,
        "--port",
        str(port),
    ]
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)  # noqa: S603
    url = f"http://{host}:{port}"
    try:
        wait_until_ready(url, timeout_s, proc)
    except RankopsError:
        proc.kill()
        raise
    state = {"pid": proc.pid, "port": port, "url": url, "log": str(log), "started": time.time()}
    state_file(home).write_text(json.dumps(state))
    return state


def stop(home: Path, timeout_s: float = 10.0) -> bool:
    """Stop the background server of ``home`` if one runs; True if one was stopped."""
    state = status(home)
    if state is None:
        return False
    pid = int(state["pid"])
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if os.waitpid(pid, os.WNOHANG)[0] == pid:  # our own child: reap it, or it lingers as a zombie
                break
        except ChildProcessError:
            pass
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.1)
    else:
        os.kill(pid, signal.SIGKILL)
    state_file(home).unlink(missing_ok=True)
    return True


def post_json(url: str, document: dict[str, Any], timeout_s: float = 5.0) -> dict[str, Any]:
    request = urllib.request.Request(  # noqa: S310 - a local URL we started
        f"{url}/invocations",
        data=json.dumps(document).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=timeout_s) as response:  # noqa: S310 - local URL we started
        result: dict[str, Any] = json.loads(response.read())
        return result
