"""cdk-nag (AwsSolutions): acknowledgments, always with the reason written next to them.

Two kinds:

* :func:`acknowledge` is cdk-nag v3's own mechanism (``Validations.of(x).acknowledge``):
  one rule on a construct and its children.
* :func:`acknowledge_wildcards` reviews IAM wildcard findings (``AwsSolutions-IAM5[...]``)
  by *pattern*. cdk-nag reports one finding per wildcard and only accepts the exact
  finding text, which embeds resolved tokens (``rankops-dev-data-lake:ExportsOutput...``)
  that change with every refactoring. A pattern such as ``Resource::.*/events/\\*`` says
  what was reviewed instead. :class:`ReviewedAwsSolutionsChecks` runs AwsSolutions and
  removes only the IAM5 findings matched by a pattern declared on the finding's construct
  or an ancestor; every other finding is reported as usual. What it acknowledged (finding,
  construct, reason), with every rule acknowledgment, is written next to the templates as
  ``nag-acknowledged.json`` (CDK leaves a plugin without violations out of ``validation-report.json``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import jsii
from aws_cdk import (
    Acknowledgment,
    CfnResource,
    IPolicyValidationContext,
    IPolicyValidationPlugin,
    PolicyValidationPluginReport,
    PolicyViolation,
    Validations,
)
from cdk_nag import AwsSolutionsChecks
from constructs import IConstruct

MIN_REASON = 20
ACKNOWLEDGED_FILE = "nag-acknowledged.json"
WILDCARD_RULE = "AwsSolutions-IAM5"
_REVIEW_KEY = "rankops:wildcard-review"

# Patterns for what CDK grants and the AWS documentation produce (used by several constructs).
S3_GRANT_ACTIONS = r"Action::s3:(GetBucket|GetObject|List|DeleteObject|Abort)\*"
KMS_GRANT_ACTIONS = r"Action::kms:(GenerateDataKey|ReEncrypt)\*"
NO_RESOURCE_TYPE = r"Resource::\*"  # actions without resource types; tests/infra/test_iam.py lists them
OWN_LOG_STREAMS = r"Resource::arn:<AWS::Partition>:logs:[^:]+:<AWS::AccountId>:log-group:.+:\*"


def lake_objects(zone: str, prefix: str = "") -> str:
    """Objects of one lake zone's bucket under ``prefix`` (the bucket's ARN is an export of the lake stack)."""
    return rf"Resource::.*Lake{zone.capitalize()}Bucket[^/]*/{re.escape(prefix)}\*"


def acknowledge(scope: IConstruct, rule: str, reason: str) -> None:
    """Acknowledge ``rule`` on ``scope``; a reason too short to explain anything is a bug."""
    _check_reason(rule, reason)
    Validations.of(scope).acknowledge(Acknowledgment(id=rule, reason=reason))


def acknowledge_wildcards(scope: IConstruct, reason: str, *patterns: str) -> None:
    """Accept IAM5 findings on ``scope`` (and below) whose text fully matches one of ``patterns``."""
    _check_reason(WILDCARD_RULE, reason)
    for pattern in patterns:
        re.compile(pattern)
    scope.node.add_metadata(_REVIEW_KEY, {"reason": reason, "patterns": list(patterns)})


def _check_reason(rule: str, reason: str) -> None:
    if len(reason) < MIN_REASON:
        raise ValueError(f"acknowledgment of {rule} needs a written reason, got {reason!r}")


def _reviews(root: IConstruct) -> Iterator[tuple[str, str, list[re.Pattern[str]]]]:
    for node in root.node.find_all():
        for entry in node.node.metadata:
            if entry.type == _REVIEW_KEY:
                data = entry.data
                yield node.node.path, data["reason"], [re.compile(p) for p in data["patterns"]]


@jsii.implements(IPolicyValidationPlugin)
class ReviewedAwsSolutionsChecks:
    """AwsSolutions, with IAM5 findings matched by :func:`acknowledge_wildcards` removed."""

    def __init__(self, app: IConstruct) -> None:
        self._app = app
        self._inner = AwsSolutionsChecks(app, verbose=True)

    @property
    def name(self) -> str:
        return str(self._inner.name)

    @property
    def version(self) -> str | None:
        return self._inner.version

    @property
    def rule_ids(self) -> list[str] | None:
        return self._inner.rule_ids

    def validate(self, context: IPolicyValidationContext) -> PolicyValidationPluginReport:
        report = self._inner.validate(context)
        reviews = list(_reviews(self._app))
        kept: list[PolicyViolation] = []
        acknowledged: list[dict[str, str]] = []
        for violation in report.violations:
            finding = _finding(violation.rule_name)
            remaining = []
            for resource in violation.violating_resources:
                reason = _reason(finding, resource.construct_path or "", reviews) if finding else None
                if reason is None:
                    remaining.append(resource)
                else:
                    path = resource.construct_path or ""
                    acknowledged.append({"rule": violation.rule_name, "path": path, "reason": reason})
            if remaining:
                kept.append(
                    PolicyViolation(
                        rule_name=violation.rule_name,
                        description=violation.description,
                        violating_resources=remaining,
                        severity=violation.severity,
                        fix=violation.fix,
                    )
                )
        if context.template_paths:
            record = {
                "plugin": self.name,
                "violations": len(kept),
                "acknowledged_rules": list(_rule_acknowledgments(self._app)),
                "acknowledged_wildcards": acknowledged,
            }
            outdir = Path(context.template_paths[0]).parent
            (outdir / ACKNOWLEDGED_FILE).write_text(json.dumps(record, indent=1))
        return PolicyValidationPluginReport(
            success=not kept,
            violations=kept,
            metadata={"acknowledged_wildcards": json.dumps(acknowledged)},
            plugin_version=self._inner.version,
        )


def _rule_acknowledgments(root: IConstruct) -> Iterator[dict[str, str]]:
    """Every ``Validations.of(x).acknowledge`` of an AwsSolutions rule, for the audit record."""
    for node in root.node.find_all():
        for entry in node.node.metadata:
            if entry.type == Validations.ACKNOWLEDGED_RULES_METADATA_KEY:
                for key, reason in dict(entry.data).items():
                    rule = re.sub(r"^annotation::", "", key, flags=re.IGNORECASE)
                    if rule.startswith("AwsSolutions-"):
                        yield {"rule": rule, "path": node.node.path, "reason": reason}


def _finding(rule_name: str) -> str | None:
    """``Resource::...`` out of ``AwsSolutions-IAM5[Resource::...]``; None for other rules."""
    prefix = WILDCARD_RULE + "["
    return rule_name[len(prefix) : -1] if rule_name.startswith(prefix) and rule_name.endswith("]") else None


def _reason(finding: str, path: str, reviews: list[tuple[str, str, list[re.Pattern[str]]]]) -> str | None:
    for scope_path, reason, patterns in reviews:
        inside = path == scope_path or path.startswith(scope_path + "/")
        if inside and any(p.fullmatch(finding) for p in patterns):
            return reason
    return None


def cfn_lint_ignore(scope: IConstruct, *checks: str) -> None:
    """Resource-level cfn-lint exception (template metadata), for findings that are CDK's idiom, not a defect.

    Callers say why next to the call; cfn-lint reads ``Metadata.cfn-lint.config.ignore_checks``.
    """
    resource = scope if isinstance(scope, CfnResource) else scope.node.default_child
    if not isinstance(resource, CfnResource):
        raise TypeError(f"{scope.node.path} has no CloudFormation resource to annotate")
    resource.add_metadata("cfn-lint", {"config": {"ignore_checks": list(checks)}})
