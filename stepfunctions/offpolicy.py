"""The off-policy gate's states, between the offline ``Gate`` and ``Register``.

``OffPolicy`` (a processing job: challenger vs champion re-scored on the feedback log,
rankops/ope/gate.py; in AWS the endpoint's data capture at ``DataCaptureUri``, the destination
the serving template configures; locally ``none``: the lake's log) -> ``OffPolicyGate`` (the
gate Lambda reads its decision) ->
``OffPolicyOk?``: ``stop`` goes to ``OffPolicyRejected`` (SNS) and then ``rejected``; ``pass``
and ``inconclusive`` go on to ``next_state``. Kept apart from :mod:`stepfunctions.definition`
so the graph stays readable there.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from stepfunctions import tasks as t
from stepfunctions.asl import lambda_task, notify


def states(r: Mapping[str, str], *, next_state: str, rejected: str, on_error: str) -> dict[str, dict[str, Any]]:
    return {
        "OffPolicy": t.processing(
            r,
            "offpolicy",
            "sagemaker_jobs.offpolicy.entry",
            t.job_arguments("--data-capture", r["DataCaptureUri"], "--endpoint", r["EndpointName"]),
            [t.processing_input("evaluation", t.uri(r, "ArtifactsBucket", "evaluation/evaluation"))],
            ["offpolicy"],
            next_state="OffPolicyGate",
            on_error=on_error,
            result_path="$.offpolicy_job",
        ),
        "OffPolicyGate": lambda_task(
            r["LambdaArn_gate"],
            {"offpolicy_uri.$": t.uri(r, "ArtifactsBucket", "offpolicy/offpolicy/offpolicy.json")},
            next_state="OffPolicyOk?",
            on_error=on_error,
            result_path="$.offpolicy",
            comment="the off-policy job's decision (challenger vs champion estimated on logged exploration)",
        ),
        "OffPolicyOk?": {
            "Type": "Choice",
            "Choices": [{"Variable": "$.offpolicy.result.stop", "BooleanEquals": True, "Next": "OffPolicyRejected"}],
            "Default": next_state,
        },
        "OffPolicyRejected": notify(
            r["FailuresTopicArn"],
            "rankops: challenger stopped by the off-policy gate",
            {
                "execution.$": "$.execution",
                "version.$": "$.gate.result.version",
                "reasons.$": "$.offpolicy.result.reasons",
            },
            rejected,
        ),
    }
