"""The release steps (:class:`rankops.release.endpoint.Endpoint`) against the local inference
server (``local:<RANKOPS_HOME>``): the local release state of :mod:`rankops.release.local` (aliases +
the document the running server follows); the server is started if it is not running. A check
replays logged requests through the server (the local stand-in for production traffic) until the
evidence decides."""

from __future__ import annotations

import json
import time
from typing import Any

from rankops.release.endpoint import LOCAL_PREFIX


class LocalEndpoint:
    """The local inference server under a ``RANKOPS_HOME``, driven by the local release state."""

    def __init__(self, home: str) -> None:
        from rankops.config import load_settings

        self.name = LOCAL_PREFIX + home
        self.settings = load_settings(home=home)

    @classmethod
    def open(cls, home: str) -> LocalEndpoint:
        return cls(home)

    def _server(self) -> str:
        from rankops import background

        state = background.status(self.settings.home)
        if state is None:
            cfg = self.settings.serving
            state = background.start(self.settings.home, self.settings.env, cfg.host, cfg.port)
        return str(state["url"])

    def describe(self) -> dict[str, Any]:
        """``DescribeEndpoint``'s answer for the local server: always settled (local steps switch
        synchronously), its "config" named after the release state it serves."""
        from rankops.release import local

        config = local_config_name(local.current_state(self.settings))
        return {"EndpointStatus": "InService", "EndpointConfigName": config}

    def run(self, action: str, event: dict[str, Any]) -> dict[str, Any]:
        from rankops.release import local
        from rankops.release import state as transitions

        settings, version = self.settings, str(event.get("version") or "")
        if version and action in ("deploy", "shadow", "canary", "promote"):
            local.verify_gated(settings, version)  # a tampered model is refused before anything moves
        if action == "deploy":  # the first release: nothing to compare with, the gate's floor decided
            new = transitions.first_release(local.current_state(settings), version)
            local.apply(settings, new)
            url = self._server()
            local.wait_for_server(url, new)
            return {"mode": new.mode, "champion": new.champion, "url": url}
        if action == "check":
            return self._check(int(event.get("max_requests", 4000)))
        if action == "baseline":  # the local rollback restores `previous` (the release state keeps it)
            return {"champion": local.current_state(settings).champion}
        if action == "route":  # the local server routes users itself (the same bucketing function)
            return {"published": False}
        url = self._server()
        if action == "shadow":
            result = local.shadow(settings, version, url=url)
        elif action == "canary":
            result = local.canary(settings, float(event["share"]), force=True, url=url)
        elif action == "promote":
            result = local.promote(settings, force=True, url=url)
        else:
            result = local.rollback(settings, url=url)
        state = result.state
        return {
            "endpoint_config": local_config_name(state),
            "mode": state.mode,
            "champion": state.champion,
            "challenger": state.challenger,
            "canary_share": state.canary_share,
            "removed": result.removed,
        }

    def _check(self, max_requests: int = 4000, batch: int = 100, settle_s: float = 15.0) -> dict[str, Any]:
        """Replay logged traffic until the evidence decides (or ``max_requests`` were sent and
        ``settle_s`` passed: shadow scores are reported every couple of seconds)."""
        from rankops.release import local

        settings, url = self.settings, self._server()
        bodies = logged_requests(settings, 2000)
        sent, deadline = 0, None
        while True:
            state = local.current_state(settings)
            decision = local.step_evidence(settings, state, url)
            if decision.action != "hold" or (deadline is not None and time.monotonic() > deadline):
                return {"ok": decision.ok, **decision.as_dict(), "mode": state.mode, "replayed": sent}
            if sent < max_requests:
                post_all(url, [bodies[(sent + k) % len(bodies)] for k in range(batch)])
                sent += batch
            else:
                deadline = deadline or time.monotonic() + settle_s
                time.sleep(0.5)


def local_config_name(state: Any) -> str:
    """The local stand-in for an endpoint config name: one per release state."""
    return f"local-{state.mode}-{state.champion}-{state.challenger}-{state.canary_share:g}"


def logged_requests(settings: Any, count: int) -> list[bytes]:
    """Recent logged searches as request bodies, one per user (the local stand-in for production
    traffic: a sticky canary splits *users*, so replaying one search per user gives the challenger
    its configured share of requests)."""
    from rankops.errors import DataError
    from rankops.lake import Lake

    lake = Lake.from_settings(settings)
    parts = lake.partitions("raw", "events")[-72:]
    columns = ["ts", "request_id", "user_id", "query_category", "device", "item_id"]
    frame = lake.read("raw", "events", columns, parts).to_pandas()
    if frame.empty:
        raise DataError("no logged requests in the lake to replay; run `rankops generate` or `rankops ingest`")
    newest = frame.sort_values("ts").groupby("user_id")["request_id"].last().tail(count)
    chosen = frame[frame["request_id"].isin(set(newest))]
    bodies = []
    for _, rows in chosen.groupby("request_id", sort=False):
        first = rows.iloc[0]
        body = {
            "user_id": first["user_id"],
            "context": {"category": first["query_category"], "device": first["device"]},
            "candidates": list(dict.fromkeys(rows["item_id"])),
        }
        bodies.append(json.dumps(body).encode())
    return bodies


def post_all(url: str, bodies: list[bytes]) -> None:
    """POST each body to ``/invocations`` over one keep-alive connection."""
    import http.client
    import socket
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port or 80, timeout=10)
    conn.connect()
    conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # no delayed-ACK stall per request
    try:
        for body in bodies:
            conn.request("POST", "/invocations", body, {"Content-Type": "application/json"})
            conn.getresponse().read()
    finally:
        conn.close()
