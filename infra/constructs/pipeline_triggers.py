"""What starts the pipeline: a weekly schedule, the feature-drift alarm, and an emergency request.

All three go through ``lambdas/retrain_trigger`` (rules in :mod:`rankops.pipeline.retrain`:
single flight, a cooldown for drift, execution names per trigger window). The emergency path is an EventBridge event any
operator with ``events:PutEvents`` can send (README shows the command) or a direct
invocation of the function; both need a reason and a name. Failed, timed-out and
aborted executions are announced on the failures topic.
"""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_sns as sns
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from infra.config import ALARM_DRIFT, EnvConfig
from infra.constructs.dead_letters import DeadLetters
from infra.constructs.lambda_function import HandlerFunction
from infra.nag import KMS_GRANT_ACTIONS, NO_RESOURCE_TYPE, OWN_LOG_STREAMS, acknowledge_wildcards
from rankops.pipeline.retrain import EMERGENCY_DETAIL_TYPE

EMERGENCY_SOURCE = "rankops.ops"


class PipelineTriggers(Construct):
    """Exposes ``function`` (the trigger) and the rules ``weekly``, ``drift``, ``emergency``, ``failed``."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: EnvConfig,
        state_machine: sfn.IStateMachine,
        approvals: sns.ITopic,
        failures: sns.ITopic,
    ) -> None:
        super().__init__(scope, construct_id)
        self.function = HandlerFunction(
            self,
            "Trigger",
            config=config,
            name="retrain_trigger",
            description="Start the retraining pipeline (weekly, drift, emergency) unless a run is going",
            environment={
                "STATE_MACHINE_ARN": state_machine.state_machine_arn,
                "APPROVALS_TOPIC_ARN": approvals.topic_arn,
                "RETRAIN_COOLDOWN_HOURS": f"{config.aws.retrain_cooldown_hours:g}",
            },
        )
        state_machine.grant_start_execution(self.function.role)
        self.function.role.add_to_policy(
            iam.PolicyStatement(actions=["states:ListExecutions"], resources=[state_machine.state_machine_arn])
        )
        approvals.grant_publish(self.function.role)
        acknowledge_wildcards(
            self.function.role,
            "Wildcards: the function's own log streams and X-Ray (no resource types); KMS action groups for "
            "publishing to the encrypted approvals topic come from the CDK grant.",
            OWN_LOG_STREAMS,
            KMS_GRANT_ACTIONS,
            NO_RESOURCE_TYPE,
        )
        self.dead_letters = DeadLetters(self, "DeadLetters", config=config, alert=failures)
        dlq = self.dead_letters.queue
        target = targets.LambdaFunction(
            self.function.function, retry_attempts=2, max_event_age=Duration.hours(2), dead_letter_queue=dlq
        )
        self.weekly = events.Rule(
            self,
            "Weekly",
            description=f"{config.prefix}: weekly retraining ({config.aws.retrain_schedule}, UTC)",
            schedule=events.Schedule.expression(config.aws.retrain_schedule),
            targets=[target],
        )
        self.drift = events.Rule(
            self,
            "Drift",
            description=f"{config.prefix}: retrain when the feature-drift alarm fires",
            event_pattern=events.EventPattern(
                source=["aws.cloudwatch"],
                detail_type=["CloudWatch Alarm State Change"],
                detail={"alarmName": [config.alarm_name(ALARM_DRIFT)], "state": {"value": ["ALARM"]}},
            ),
            targets=[target],
        )
        self.emergency = events.Rule(
            self,
            "Emergency",
            description=f"{config.prefix}: manual emergency retrain ({EMERGENCY_SOURCE} / {EMERGENCY_DETAIL_TYPE})",
            event_pattern=events.EventPattern(
                source=[EMERGENCY_SOURCE],
                detail_type=[EMERGENCY_DETAIL_TYPE],
                detail={"environment": [config.name]},
            ),
            targets=[target],
        )
        self.failed = events.Rule(
            self,
            "ExecutionFailed",
            description=f"{config.prefix}: a pipeline execution failed, timed out or was aborted",
            event_pattern=events.EventPattern(
                source=["aws.states"],
                detail_type=["Step Functions Execution Status Change"],
                detail={
                    "status": ["FAILED", "TIMED_OUT", "ABORTED"],
                    "stateMachineArn": [state_machine.state_machine_arn],
                },
            ),
            targets=[
                targets.SnsTopic(
                    failures,
                    dead_letter_queue=dlq,
                    message=events.RuleTargetInput.from_text(
                        f"{config.prefix} pipeline execution {events.EventField.from_path('$.detail.name')} "
                        f"ended {events.EventField.from_path('$.detail.status')}"
                    ),
                )
            ],
        )
