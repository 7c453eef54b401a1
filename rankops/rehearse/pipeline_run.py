"""The deployed state machine, run in AWS mode inside a rehearsal's world.

The world's state machine (the definition CDK deploys, ``DefinitionSubstitutions`` resolved from the
synthesized template) executes on moto's Step Functions interpreter in the world's moto server, with
the engine's seams (:mod:`rankops.pipeline.engine`): every Lambda task runs its handler with that
function's template environment; SageMaker and EMR jobs run the local job runners
(:class:`rankops.pipeline.local_jobs.LocalJobs`) reading and writing ``s3://`` locations in moto
(:class:`S3JobStorage`, no local folder stands in for a bucket); ``DescribeEndpoint`` and the release
Lambda reach the SageMaker endpoint emulator through boto3.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rankops.pipeline import runner
from rankops.pipeline.engine import LocalTaskFailed, installed
from rankops.pipeline.local_jobs import LocalJobs
from rankops.rehearse.world import REPO, World


def _split(uri: str) -> tuple[str, str]:
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    return bucket, key


@dataclass(frozen=True)
class S3JobStorage:
    """Job inputs downloaded from (moto) S3 and outputs uploaded to it, as SageMaker's own S3
    transfer does; ``code`` maps program URIs (the EMR entry point) to this checkout's files (what
    the deployment uploads there)."""

    s3: Any
    code: Mapping[str, Path]

    def rewrite(self, value: str) -> str:
        """A code URI (the EMR entry point) -> the checkout's file; anything else unchanged: the
        jobs read and write ``s3://`` themselves."""
        return str(self.code[value]) if value in self.code else value

    def _keys(self, bucket: str, prefix: str) -> list[str]:
        pages = self.s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        return [o["Key"] for page in pages for o in page.get("Contents", [])]

    def fetch(self, uri: str, target: Path) -> None:
        """S3Prefix semantics: every object under the prefix lands under ``target`` by its relative
        key; a prefix naming one object lands as that file inside ``target``."""
        bucket, key = _split(uri)
        keys = self._keys(bucket, key)
        if key in keys:
            target.mkdir(parents=True, exist_ok=True)
            self.s3.download_file(bucket, key, str(target / Path(key).name))
            return
        inside = [k for k in keys if k.startswith(key.rstrip("/") + "/") and not k.endswith("/")]
        if not inside:
            raise LocalTaskFailed({"FailureReason": f"ClientError: no data at {uri} (the S3 input of this job)"})
        for k in inside:
            path = target / k[len(key.rstrip("/")) + 1 :]
            path.parent.mkdir(parents=True, exist_ok=True)
            self.s3.download_file(bucket, k, str(path))

    def store(self, source: Path, uri: str) -> None:
        bucket, key = _split(uri)
        files = [source] if source.is_file() else sorted(p for p in source.rglob("*") if p.is_file())
        for path in files:
            name = key if path == source else f"{key.rstrip('/')}/{path.relative_to(source).as_posix()}"
            self.s3.upload_file(str(path), bucket, name)


def code_files(definition: Mapping[str, Any]) -> dict[str, Path]:
    """Each EMR entry point of the definition -> the checkout's file of the same name under ``emr_jobs/``."""
    found: dict[str, Path] = {}

    def walk(value: Any) -> None:
        if isinstance(value, dict):
            entry = value.get("EntryPoint")
            if isinstance(entry, str) and entry.startswith("s3://"):
                found[entry] = REPO / "emr_jobs" / Path(_split(entry)[1]).name
            for v in value.values():
                walk(v)
        elif isinstance(value, list):
            for v in value:
                walk(v)

    walk(definition)
    return found


@contextmanager
def deployed_engine(
    world: World, home: Path, *, job_env: Mapping[str, str] | None = None, time_scale: float = 0.01
) -> Iterator[None]:
    """The engine's seams for the world's pipeline: Lambda tasks run their handlers (with their
    template environment), SageMaker/EMR jobs the local job runners on moto S3. Anything that
    starts an execution of the pipeline while this is open (a run, or the retrain trigger) runs it."""
    definition = json.loads(world.definition())
    storage = S3JobStorage(world.client("s3"), code_files(definition))
    jobs = LocalJobs(
        home,
        storage,
        REPO,
        commands={"train": [str(Path(sys.executable).with_name("train"))]},
        base_env={"RANKOPS_HOME": str(home), "RANKOPS_CONFIG": str(REPO / "rankops.toml"), **(job_env or {})},
    )
    with installed({"sagemaker": jobs.sagemaker, "emr-serverless": jobs.emr_serverless}, time_scale):
        yield


def run_deployed(
    world: World,
    home: Path,
    execution_input: Mapping[str, Any],
    *,
    job_env: Mapping[str, str] | None = None,
    on_state: Callable[[runner.StateRecord], None] | None = None,
    approver: runner.Approver | None = None,
    time_scale: float = 0.01,
    timeout_s: float = 1800,
) -> runner.ExecutionRecord:
    """One execution of the world's pipeline state machine; the record is saved under ``home``."""
    machine = world.state_machines[f"{world.prefix}-pipeline"]
    with deployed_engine(world, home, job_env=job_env, time_scale=time_scale):
        record = runner.start_and_follow(
            world.client("stepfunctions"),
            machine,
            execution_input,
            on_state=on_state,
            approver=approver,
            timeout_s=timeout_s,
        )
    runner.save(home, record)
    return record
