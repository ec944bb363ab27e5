"""The alert topic of an environment and who it reaches.

Creates an SNS topic encrypted with the database CMK that accepts TLS publishing only, a topic
policy that lets the AWS services raising our alerts (RDS events, CloudWatch alarms, EventBridge)
publish for this account only, an email subscription per configured address and, when
configured, an AWS Chatbot Slack channel that relays the topic.

Exposes `topic` and `slack_channel` (None without Slack).
"""

from __future__ import annotations

from collections.abc import Sequence

import aws_cdk as cdk
from aws_cdk import aws_chatbot as chatbot
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions

from config.schema import SlackChannelConfig
from constructs import Construct

# Service principals that publish alerts into the topic themselves. The database CMK's key
# policy lets the same services encrypt with it (constructs/encryption.py, DataStack).
PUBLISHING_SERVICES = ("events.rds.amazonaws.com", "cloudwatch.amazonaws.com", "events.amazonaws.com")


class AlertTopic(Construct):
    """An encrypted, TLS-only SNS topic with email and optional Slack subscribers."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        display_name: str,
        encryption_key: kms.IKey,
        email_addresses: Sequence[str],
        slack: SlackChannelConfig | None = None,
        slack_channel_name: str | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        self.topic = sns.Topic(
            self,
            "Topic",
            display_name=display_name,
            master_key=encryption_key,
            enforce_ssl=True,
        )
        # Publishing with a service principal needs the topic policy to say so; aws:SourceAccount
        # keeps other accounts' alarms, rules and RDS subscriptions out (confused deputy).
        self.topic.add_to_resource_policy(
            iam.PolicyStatement(
                sid="AwsServicesOfThisAccountPublishAlerts",
                principals=[iam.ServicePrincipal(service) for service in PUBLISHING_SERVICES],
                actions=["sns:Publish"],
                resources=[self.topic.topic_arn],
                conditions={"StringEquals": {"aws:SourceAccount": cdk.Stack.of(self).account}},
            )
        )
        for address in email_addresses:
            # Each address receives a confirmation mail once; unconfirmed addresses get nothing.
            self.topic.add_subscription(subscriptions.EmailSubscription(address))

        self.slack_channel: chatbot.SlackChannelConfiguration | None = None
        if slack is not None:
            self.slack_channel = chatbot.SlackChannelConfiguration(
                self,
                "SlackChannel",
                slack_channel_configuration_name=slack_channel_name or display_name,
                slack_workspace_id=slack.workspace_id,
                slack_channel_id=slack.channel_id,
                notification_topics=[self.topic],
                # The channel only relays notifications. Its role has no policies, and the
                # guardrail caps whatever a later change might add at read-only CloudWatch
                # (without a guardrail Chatbot applies AdministratorAccess).
                guardrail_policies=[
                    iam.ManagedPolicy.from_aws_managed_policy_name("CloudWatchReadOnlyAccess")
                ],
                user_role_required=False,
            )
