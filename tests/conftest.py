"""Shared fixtures: one Spark session per run, temporary homes, a small generated
marketplace with features, and a Redis that is safe to write to.

Every test gets its marker from the folder it lives in (tests/unit -> unit, ...),
so ``pytest -m unit`` selects by layer without per-file boilerplate.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import pytest

os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
os.environ.setdefault("AWS_DEFAULT_REGION", "eu-west-1")
os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "18,20,22")
os.environ.setdefault("MLFLOW_ENABLE_ASYNC_LOGGING", "false")
# Two pytest workers on two cores: LightGBM's OpenMP threads (num_threads 2) must not spin-wait for a
# descheduled sibling (up to ~10x slower training, identical models); children inherit it (local jobs,
# rankops/pipeline/local_jobs.py::HOST_DEFAULTS). Set before anything loads libgomp.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
for _var in [v for v in os.environ if v.startswith("RANKOPS_")]:
    del os.environ[_var]  # a developer's shell must not change what the tests see

from rankops.config import Settings, load_settings  # noqa: E402
from rankops.lake import Lake  # noqa: E402

LAYERS = ("unit", "integration", "infra", "e2e")
REPO = Path(__file__).resolve().parent.parent


# Test files that each keep a worker busy for minutes (docs/testing.md has the figures), longest first.
# They are collected first and `make test` keeps collection order (xdist's --no-loadscope-reorder), so
# they start at once, one per worker, and the short files fill in around them. xdist's default order
# (files with the most tests first) started them last: one worker then ran the rehearsal alone for
# its final ten minutes.
LONG_POLES = (
    "tests/e2e/test_rehearse.py",
    "tests/e2e/test_simulate.py",
    "tests/e2e/test_pipeline.py",
    "tests/e2e/test_demo.py",
)


def long_poles_first(items: list[pytest.Item]) -> None:
    """Sort ``items`` in place: the :data:`LONG_POLES` files first, in that order, then the rest as
    collected (a stable sort: each file's tests stay together and in their order)."""

    def rank(item: pytest.Item) -> int:
        path = Path(str(item.fspath)).relative_to(REPO).as_posix()
        return LONG_POLES.index(path) if path in LONG_POLES else len(LONG_POLES)

    items.sort(key=rank)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    long_poles_first(items)
    for item in items:
        parts = Path(str(item.fspath)).relative_to(REPO / "tests").parts
        if parts and parts[0] in LAYERS:
            item.add_marker(getattr(pytest.mark, parts[0]))


def make_settings(home: Path, **sections: dict[str, object]) -> Settings:
    """Local settings rooted at ``home``, small Spark, no environment overrides."""
    environ = {f"RANKOPS_{s.upper()}__{k.upper()}": str(v) for s, kv in sections.items() for k, v in kv.items()}
    environ.setdefault("RANKOPS_SPARK__MASTER", "local[2]")
    environ.setdefault("RANKOPS_SPARK__SHUFFLE_PARTITIONS", "4")
    environ.setdefault("RANKOPS_SPARK__DRIVER_MEMORY", "2g")
    return load_settings(env="local", home=home, config_file=REPO / "rankops.toml", environ=environ)


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """moto for this test, with fake credentials in the environment (a test never reaches AWS)."""
    from moto import mock_aws

    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": "eu-west-1",
    }.items():
        monkeypatch.setenv(name, value)
    with mock_aws():
        yield


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "home"


@pytest.fixture
def settings(home: Path) -> Settings:
    return make_settings(home)


@pytest.fixture
def lake(settings: Settings) -> Lake:
    return Lake.from_settings(settings)


@pytest.fixture(scope="session")
def spark(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """One local Spark session for the whole run (start-up costs ~5 s)."""
    from rankops.spark_session import get_spark

    session = get_spark(make_settings(tmp_path_factory.mktemp("spark-home")), "rankops-tests")
    yield session
    session.stop()


@dataclass
class MarketHome:
    settings: Settings
    lake: Lake


@pytest.fixture(scope="session")
def market(tmp_path_factory: pytest.TempPathFactory, spark) -> MarketHome:  # type: ignore[no-untyped-def]
    """A small synthetic marketplace with its offline features built (shared, read-only)."""
    from rankops.features import offline
    from rankops.synthetic import MarketplaceSpec, generate, write_marketplace

    settings = make_settings(tmp_path_factory.mktemp("market-home"))
    lake = Lake.from_settings(settings)
    write_marketplace(lake, generate(MarketplaceSpec(events=60_000, days=3, seed=11, start=date(2026, 11, 1))))
    offline.build(spark, lake, settings)
    return MarketHome(settings, lake)


# -- Redis ----------------------------------------------------------------------------------
@dataclass
class RedisTarget:
    """A Redis the tests may write to: the shared local server under a private key
    prefix (never flushed), or a private server this fixture started."""

    url: str
    prefix: str
    owned: bool


def _reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
def redis_target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisTarget]:
    import redis

    prefix = f"rankops-test-{uuid.uuid4().hex[:8]}"
    if _reachable("127.0.0.1", 6379):
        target = RedisTarget("redis://127.0.0.1:6379/0", prefix, owned=False)
        yield target
        client = redis.Redis.from_url(target.url)
        keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
        if keys:
            client.delete(*keys)
        client.close()
        return
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.fail("no Redis at 127.0.0.1:6379 and no redis-server binary: install it (apt-get install redis-server)")
    port = _free_port()
    folder = tmp_path_factory.mktemp("redis")
    proc = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", str(folder)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 10
    while not _reachable("127.0.0.1", port):
        if time.monotonic() > deadline or proc.poll() is not None:
            proc.kill()
            pytest.fail(f"the private redis-server on port {port} did not start")
        time.sleep(0.05)
    yield RedisTarget(f"redis://127.0.0.1:{port}/0", prefix, owned=True)
    proc.terminate()
    proc.wait(timeout=10)


# -- serving ----------------------------------------------------------------------------------
@dataclass
class ServingHome:
    """An online store seeded with item features and real LightGBM rankers in MLflow: version 1
    (champion), 2 (trained on inverted labels: a bad challenger), 3 (a good challenger), and a
    fallback model reading only ctr_7d and category_match. Copy it before changing it."""

    settings: Settings
    versions: dict[str, str]


@pytest.fixture(scope="session")
def serving_home(tmp_path_factory: pytest.TempPathFactory) -> ServingHome:
    from rankops import registry
    from tests import serving_helpers as h

    settings = make_settings(tmp_path_factory.mktemp("serving") / "home")
    h.seed_store(settings)
    versions = {
        "good": h.register(settings, h.tiny_booster(0), alias=registry.CHAMPION),
        "bad": h.register(settings, h.tiny_booster(1, invert=True)),
        "challenger": h.register(settings, h.tiny_booster(2)),
        "fallback": h.register(
            settings,
            h.tiny_booster(3, names=["ctr_7d", "category_match"]),
            alias=registry.CHAMPION,
            name=registry.fallback_model_name(settings),
        ),
    }
    return ServingHome(settings, versions)


@pytest.fixture
def serving_copy(serving_home: ServingHome, tmp_path: Path) -> ServingHome:
    """A private copy of ``serving_home`` (its registry and store may be changed)."""
    shutil.copytree(serving_home.settings.home, tmp_path / "home")
    return ServingHome(make_settings(tmp_path / "home"), dict(serving_home.versions))


# -- ranking rows without Spark (training unit tests) -----------------------------------------
def ranking_frame(requests: int = 300, seed: int = 0, categories: tuple[str, ...] = ("toys", "home", "sports")):  # type: ignore[no-untyped-def]
    """Rows shaped like ``build_training_frame`` output (every model feature, labels from a
    hidden score, logged positions, rows ordered by ``order_rows``), made with NumPy only."""
    import numpy as np
    import pandas as pd

    from rankops.features import registry
    from rankops.training.dataset import order_rows

    rng = np.random.default_rng(seed)
    sizes = rng.integers(8, 20, requests)
    n = int(sizes.sum())
    request = np.repeat(np.arange(requests), sizes)
    start = pd.Timestamp("2026-11-01", tz="UTC")
    frame = pd.DataFrame(
        {
            "request_id": [f"r-{r}" for r in request],
            "ts": start + pd.to_timedelta(np.repeat(np.sort(rng.integers(0, 3 * 86_400, requests)), sizes), unit="s"),
            "user_id": [f"u-{u}" for u in rng.integers(0, 50, requests)[request]],
            "query_category": np.array(categories)[rng.integers(0, len(categories), requests)][request],
            "device": "mobile",
            "item_id": [f"i-{i}" for i in rng.integers(0, 400, n)],
            "position": np.concatenate([np.arange(1, s + 1) for s in sizes]).astype(np.int16),
        }
    )
    for name in registry.model_features():
        frame[name] = rng.random(n)
    frame["days_since_creation"] = rng.exponential(20.0, n)
    frame["created_at_s"] = 0.0
    frame["category_code"] = 0.0
    utility = 2 * frame["ctr_7d"] + frame["image_quality_score"] + frame["category_match"] + rng.normal(0, 0.4, n)
    label = np.clip(np.floor((utility - 2.0) * 2), 0, 4).astype(np.int32)
    frame["clicked"], frame["contacted"] = label > 0, label > 2
    frame["revenue"] = np.where(label > 3, 10.0, 0.0)
    frame["label"] = label
    return order_rows(frame)


@pytest.fixture
def rows():  # type: ignore[no-untyped-def]
    return ranking_frame()


@pytest.fixture(scope="session")
def synthesized_env(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """``synthesized_env("dev")``: one environment's synthesized CDK templates (each synthesized at
    most once per run): what AWS-shaped tests outside tests/infra build their moto world from."""
    from tests.infra.conftest import synthesize

    return lambda env: synthesize(env, tmp_path_factory)
