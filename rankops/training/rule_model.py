"""The rule baseline as a registered MLflow pyfunc model.

The server does not need it (it calls :func:`rankops.training.baseline.rule_scores`
directly); it is registered so the rule's evaluations have a version to hang on and so
any MLflow tool can score it beside the learned models. One version per revision of
the rule's code: re-registering the same rule returns the existing version.
"""

from __future__ import annotations

import hashlib
import inspect
import json
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from rankops import ranker_model, registry
from rankops.training import baseline
from rankops.training.baseline import RULE_INPUTS, rule_scores

if TYPE_CHECKING:
    from rankops.config import Settings

RULE_CODE_TAG = "rule_code"


def rule_code_hash() -> str:
    """Content hash of the rule's source and its declared factors: a new version exactly when
    the rule changes."""
    factors = json.dumps([[name, asdict(rule)] for name, rule in baseline.rule_factors()])
    return hashlib.sha256((inspect.getsource(baseline) + factors).encode()).hexdigest()[:16]


def _python_model() -> Any:
    from mlflow.pyfunc import PythonModel

    class RuleModel(PythonModel):
        """``rule_scores`` over a DataFrame holding the rule's input columns."""

        def predict(self, context: Any, model_input: pd.DataFrame, params: Any = None) -> np.ndarray:
            return rule_scores({c: model_input[c].to_numpy() for c in RULE_INPUTS})

    return RuleModel()


def ensure_registered(settings: Settings, input_example: pd.DataFrame, tags: dict[str, str]) -> str:
    """The rule's registered version for the current code, registering it if needed."""
    import mlflow
    from mlflow.models import infer_signature

    name = registry.rule_model_name(settings)
    code = rule_code_hash()
    existing = registry.find_version(settings, RULE_CODE_TAG, code, name)
    if existing:
        return existing
    _, experiment_id = registry.connect(settings)
    example = input_example[list(RULE_INPUTS)].reset_index(drop=True)
    with mlflow.start_run(experiment_id=experiment_id, run_name="rule-baseline", tags={**tags, RULE_CODE_TAG: code}):
        info = mlflow.pyfunc.log_model(
            name="model",
            python_model=_python_model(),
            signature=infer_signature(example, rule_scores({c: example[c].to_numpy() for c in RULE_INPUTS})),
            input_example=example,
            pip_requirements=ranker_model.pip_requirements(),
        )
    created = mlflow.register_model(info.model_uri, name, tags={**tags, RULE_CODE_TAG: code})
    return str(created.version)
