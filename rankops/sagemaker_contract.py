"""The SageMaker container contracts, resolved from an environment mapping and a base folder.

SageMaker runs the processing, training and evaluation jobs with fixed paths under
``/opt/ml`` (and, in script mode, ``SM_*`` variables naming them). Locally the same
entrypoints run with the layout rooted at a base folder
(``RANKOPS_HOME/sagemaker/<job-run>/opt/ml/...``), so the job code never knows where
it runs. The environment is read once, by the entrypoint, into these frozen objects:
job code receives them and never touches ``os.environ`` (jobs may run in threads of
the local pipeline runner).

Processing (also the evaluation job)::

    /opt/ml/processing/input/<name>     inputs SageMaker downloaded
    /opt/ml/processing/output/<name>    outputs SageMaker uploads when the job ends

Training (script mode)::

    /opt/ml/input/data/<channel>              SM_CHANNEL_<CHANNEL>
    /opt/ml/input/config/hyperparameters.json string values (SageMaker stringifies them)
    /opt/ml/model                             SM_MODEL_DIR -> model.tar.gz
    /opt/ml/output/data                       SM_OUTPUT_DATA_DIR -> output.tar.gz
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rankops.errors import ConfigError, DataError, RankopsError

if TYPE_CHECKING:
    from rankops.config import Settings

BASE_ENV = "RANKOPS_SM_BASE"
EXECUTION_ENV = "RANKOPS_PIPELINE_EXECUTION_ID"
OPT_ML = ("opt", "ml")


def base_dir(environ: Mapping[str, str], explicit: str | Path | None = None) -> Path:
    """Root under which ``opt/ml`` lives: ``explicit``, else ``$RANKOPS_SM_BASE``, else ``/``."""
    return Path(explicit or environ.get(BASE_ENV) or "/")


def opt_ml(base: Path) -> Path:
    return base.joinpath(*OPT_ML)


@dataclass(frozen=True)
class ProcessingPaths:
    """A processing job's input and output folders (named sub-folders of each)."""

    input_dir: Path
    output_dir: Path
    overrides: dict[str, Path] = field(default_factory=dict)

    def input(self, name: str) -> Path:
        return self.overrides.get(f"input:{name}", self.input_dir / name)

    def output(self, name: str) -> Path:
        return self.overrides.get(f"output:{name}", self.output_dir / name)


def processing_paths(
    environ: Mapping[str, str],
    base: str | Path | None = None,
    *,
    input_dir: str | Path | None = None,
    output_dir: str | Path | None = None,
    inputs: Mapping[str, str | Path] | None = None,
    outputs: Mapping[str, str | Path] | None = None,
) -> ProcessingPaths:
    """Processing paths under ``base``; any folder (or single named input/output) can be overridden."""
    root = opt_ml(base_dir(environ, base)) / "processing"
    overrides = {f"input:{k}": Path(v) for k, v in (inputs or {}).items()}
    overrides.update({f"output:{k}": Path(v) for k, v in (outputs or {}).items()})
    return ProcessingPaths(
        Path(input_dir) if input_dir else root / "input",
        Path(output_dir) if output_dir else root / "output",
        overrides,
    )


@dataclass(frozen=True)
class TrainingPaths:
    """A training job's channels, model folder, output-data folder and hyperparameters file."""

    channels: dict[str, Path]
    model_dir: Path
    output_data_dir: Path
    hyperparameters_file: Path

    def channel(self, name: str) -> Path:
        path = self.channels.get(name)
        if path is None or not path.is_dir():
            where = str(path) if path else f"SM_CHANNEL_{name.upper()}"
            raise DataError(f"training channel {name!r} is missing ({where}); the processing job writes it")
        return path


def training_paths(environ: Mapping[str, str], base: str | Path | None = None) -> TrainingPaths:
    """Script-mode paths: ``SM_*`` variables win, else the ``/opt/ml`` layout under ``base``.

    Channels are those named by ``SM_CHANNEL_<NAME>`` variables plus any folder under
    ``opt/ml/input/data`` (what a container without the training toolkit sees).
    """
    root = opt_ml(base_dir(environ, base))
    data = root / "input" / "data"
    channels = {p.name: p for p in sorted(data.iterdir()) if p.is_dir()} if data.is_dir() else {}
    for key, value in environ.items():
        if key.startswith("SM_CHANNEL_") and key != "SM_CHANNELS":
            channels[key[len("SM_CHANNEL_") :].lower()] = Path(value)
    return TrainingPaths(
        channels,
        Path(environ.get("SM_MODEL_DIR") or root / "model"),
        Path(environ.get("SM_OUTPUT_DATA_DIR") or root / "output" / "data"),
        root / "input" / "config" / "hyperparameters.json",
    )


def decode_hyperparameter(raw: Any) -> Any:
    """SageMaker passes every hyperparameter as a string; JSON-decode it when it is JSON."""
    if not isinstance(raw, str):
        return raw
    try:
        return json.loads(raw)
    except json.JSONDecodeError:
        return raw


def read_hyperparameters(path: Path) -> dict[str, Any]:
    """The hyperparameters file, values decoded; a missing file means none."""
    if not path.is_file():
        return {}
    try:
        raw = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise ConfigError(f"{path}: hyperparameters are not valid JSON: {err}") from err
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: hyperparameters must be a JSON object, got {type(raw).__name__}")
    return {str(k): decode_hyperparameter(v) for k, v in raw.items()}


def write_hyperparameters(path: Path, values: Mapping[str, Any]) -> None:
    """Write hyperparameters the way SageMaker does: every value a string (JSON for non-strings)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    encoded = {k: v if isinstance(v, str) else json.dumps(v) for k, v in values.items()}
    path.write_text(json.dumps(encoded, indent=2, sort_keys=True))


def layout_training(
    base: Path, channels: Mapping[str, Path], hyperparameters: Mapping[str, Any] | None = None
) -> dict[str, str]:
    """Lay out a local training job under ``base`` and return the ``SM_*`` environment
    that points it at existing channel folders (no copying; SageMaker would download)."""
    root = opt_ml(base)
    env = {
        "SM_MODEL_DIR": str(root / "model"),
        "SM_OUTPUT_DATA_DIR": str(root / "output" / "data"),
        "SM_CHANNELS": json.dumps(sorted(channels)),
    }
    env.update({f"SM_CHANNEL_{name.upper()}": str(path) for name, path in channels.items()})
    (root / "model").mkdir(parents=True, exist_ok=True)
    (root / "output" / "data").mkdir(parents=True, exist_ok=True)
    write_hyperparameters(root / "input" / "config" / "hyperparameters.json", hyperparameters or {})
    return env


# -- what every job entrypoint shares ----------------------------------------------------------
def job_parser(description: str) -> argparse.ArgumentParser:
    """Arguments every job accepts: where the contract is rooted, and which settings to load."""
    parser = argparse.ArgumentParser(
        description=description, formatter_class=argparse.RawDescriptionHelpFormatter, allow_abbrev=False
    )
    parser.add_argument("--base-dir", help=f"root of the opt/ml layout (default ${BASE_ENV} or /)")
    parser.add_argument("--env", help="rankops environment (default $RANKOPS_ENV or local)")
    parser.add_argument("--home", help="RANKOPS_HOME for local runs")
    parser.add_argument("--config", help="rankops.toml to use (default: the nearest one, or built-in defaults)")
    parser.add_argument(
        "--pipeline-execution-id", help="id of the pipeline run (default $RANKOPS_PIPELINE_EXECUTION_ID)"
    )
    parser.add_argument(
        "--overrides",
        type=_json_object,
        default={},
        help='configuration overrides as JSON, e.g. \'{"gate": {"ndcg_floor": 0.4}}\' (the pipeline input\'s)',
    )
    return parser


def snapshot_time(text: str) -> datetime | None:
    """``--snapshot``: an ISO time (UTC unless it says otherwise) or ``latest`` (None)."""
    if text in ("", "latest"):
        return None
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an ISO time or 'latest'") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _json_object(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as err:
        raise argparse.ArgumentTypeError(f"not valid JSON: {err}") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError("must be a JSON object")
    return value


def job_settings(args: argparse.Namespace, environ: Mapping[str, str]) -> Settings:
    return job_settings_and_overrides(args, environ)[0]


def job_settings_and_overrides(
    args: argparse.Namespace, environ: Mapping[str, str]
) -> tuple[Settings, dict[str, dict[str, Any]]]:
    """The job's settings with the run's ``--overrides`` applied, once they are checked against
    the deployed settings (:mod:`rankops.pipeline.execution_input`), and what they changed."""
    from rankops.config import load_settings
    from rankops.pipeline.execution_input import checked_overrides

    deployed = load_settings(env=args.env, home=args.home, config_file=args.config, environ=environ)
    overrides = getattr(args, "overrides", None) or {}
    if not overrides:
        return deployed, {}
    changed = checked_overrides(overrides, deployed)
    settings = load_settings(
        env=args.env, home=args.home, config_file=args.config, environ=environ, overrides=overrides
    )
    return settings, changed


def execution_id(args: argparse.Namespace, environ: Mapping[str, str]) -> str:
    return str(args.pipeline_execution_id or environ.get(EXECUTION_ENV, ""))


def run_job(name: str, body: Callable[[], dict[str, Any]], failure_file: Path | None = None) -> int:
    """Run a job body: its summary as one JSON line on stdout and exit status 0, or one
    ``<name>: error: ...`` line on stderr (and in ``failure_file``, SageMaker's
    ``/opt/ml/output/failure``, shown as the job's failure reason) and status 2. Unexpected
    exceptions are recorded in ``failure_file`` too, then propagate with their traceback."""

    def record(message: str) -> None:
        if failure_file is not None:
            failure_file.parent.mkdir(parents=True, exist_ok=True)
            failure_file.write_text(message + "\n")

    try:
        summary = body()
    except RankopsError as err:
        message = f"{name}: error: {err}"
        print(message, file=sys.stderr)
        record(message)
        return 2
    except Exception as err:
        record(f"{name}: unexpected {type(err).__name__}: {err}")
        raise
    print(json.dumps(summary, sort_keys=True, default=str))
    return 0
