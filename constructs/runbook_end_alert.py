"""An alert when the migration runbook ends without its own failure path (finding 2b).

A Step Functions execution that TIMED_OUT or was ABORTED (StopExecution) runs no further state: no
evidence record, no failure notice, and maintenance mode stays as it was (possibly on). An EventBridge
rule on "Step Functions Execution Status Change" for this state machine sends the alert topic a
message saying so and how to clear maintenance mode. Exposes `rule`.
"""

from __future__ import annotations

import jsii
from aws_cdk import aws_events as events
from aws_cdk import aws_sns as sns
from aws_cdk.interfaces import aws_events as events_refs

from constructs import Construct

ENDED_WITHOUT_RECORD = ("TIMED_OUT", "ABORTED")


@jsii.implements(events.IRuleTarget)
class _TransformedTopicTarget:
    """The alert topic with a fixed message. Grants nothing, like AlertTopicTarget: the topic policy and
    the key policy already admit EventBridge for this account only (constructs/audit_alerts.py)."""

    def __init__(self, topic: sns.ITopic, message: events.RuleTargetInput) -> None:
        self._topic, self._message = topic, message

    def bind(self, rule: events_refs.IRuleRef, id: str | None = None) -> events.RuleTargetConfig:
        return events.RuleTargetConfig(arn=self._topic.topic_arn, input=self._message)


def ended_without_record_pattern(state_machine_arn: str) -> events.EventPattern:
    return events.EventPattern(
        source=["aws.states"],
        detail_type=["Step Functions Execution Status Change"],
        detail={"stateMachineArn": [state_machine_arn], "status": list(ENDED_WITHOUT_RECORD)},
    )


class RunbookEndAlert(Construct):
    """The rule and its message for one environment's runbook."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        environment_name: str,
        state_machine_arn: str,
        topic: sns.ITopic,
    ) -> None:
        super().__init__(scope, construct_id)
        execution = events.EventField.from_path("$.detail.executionArn")
        status = events.EventField.from_path("$.detail.status")
        message = events.RuleTargetInput.from_text(
            f"RevenuePilot {environment_name}: the migration runbook execution {execution} ended {status} "
            "without its evidence record or failure notice. Maintenance mode may still be on: check the "
            "database (a migration task may still be running in the migration cluster), then clear it with "
            f"`python -m ops maintenance --env {environment_name} --off`. The execution history shows the "
            "last state and the snapshot id; note this execution in the change record."
        )
        self.rule = events.Rule(
            self,
            "Rule",
            description=f"{environment_name} migration runbook ended TIMED_OUT or ABORTED (no evidence, no notice)",
            event_pattern=ended_without_record_pattern(state_machine_arn),
            targets=[_TransformedTopicTarget(topic, message)],
        )
