"""The alert topic's optional Slack channel (AWS Chatbot), which neither environment configures, in a bare stack."""

from __future__ import annotations

import pytest

from config.schema import SlackChannelConfig

SLACK = SlackChannelConfig(workspace_id="T01ABCDEF23", channel_id="C04ABCDEF56")


def _synth(tmp_path, slack: SlackChannelConfig | None):
    import aws_cdk as cdk
    from aws_cdk import aws_kms as kms
    from aws_cdk.assertions import Template

    from constructs.alerting import AlertTopic

    app = cdk.App(outdir=str(tmp_path))
    stack = cdk.Stack(app, "Alerting", env=cdk.Environment(account="111111111111", region="us-east-1"))
    key = kms.Key(stack, "Key", enable_key_rotation=True)
    alerts = AlertTopic(
        stack,
        "Alerts",
        display_name="probe",
        encryption_key=key,
        email_addresses=("oncall@revenuepilot.example",),
        slack=slack,
        slack_channel_name="revenuepilot-probe-database-alerts",
    )
    return alerts, Template.from_stack(stack)


@pytest.fixture(scope="module")
def with_slack(tmp_path_factory):
    return _synth(tmp_path_factory.mktemp("slack"), SLACK)


def test_the_channel_relays_the_alert_topic(with_slack):
    alerts, template = with_slack
    assert alerts.slack_channel is not None
    topic_id = alerts.topic.stack.get_logical_id(alerts.topic.node.default_child)
    template.resource_count_is("AWS::Chatbot::SlackChannelConfiguration", 1)
    template.has_resource_properties(
        "AWS::Chatbot::SlackChannelConfiguration",
        {
            "ConfigurationName": "revenuepilot-probe-database-alerts",
            "SlackWorkspaceId": SLACK.workspace_id,
            "SlackChannelId": SLACK.channel_id,
            "SnsTopicArns": [{"Ref": topic_id}],
            "UserRoleRequired": False,
            "GuardrailPolicies": [
                {
                    "Fn::Join": [
                        "",
                        ["arn:", {"Ref": "AWS::Partition"}, ":iam::aws:policy/CloudWatchReadOnlyAccess"],
                    ]
                }
            ],
        },
    )


def test_the_channel_role_has_no_policies(with_slack):
    _, template = with_slack
    roles = template.find_resources("AWS::IAM::Role")
    assert len(roles) == 1
    ((role_id, role),) = roles.items()
    (channel,) = template.find_resources("AWS::Chatbot::SlackChannelConfiguration").values()
    assert channel["Properties"]["IamRoleArn"] == {"Fn::GetAtt": [role_id, "Arn"]}
    assert role["Properties"]["AssumeRolePolicyDocument"]["Statement"][0]["Principal"] == {
        "Service": "chatbot.amazonaws.com"
    }
    assert "ManagedPolicyArns" not in role["Properties"]
    assert "Policies" not in role["Properties"]
    template.resource_count_is("AWS::IAM::Policy", 0)


def test_no_channel_without_slack_config(tmp_path):
    alerts, template = _synth(tmp_path, None)
    assert alerts.slack_channel is None
    template.resource_count_is("AWS::Chatbot::SlackChannelConfiguration", 0)
    template.resource_count_is("AWS::SNS::Subscription", 1)  # the email subscriber only
