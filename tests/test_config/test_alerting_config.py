"""Alerting configuration rules (issue 4): addresses, RDS event categories, thresholds, Slack ids,
log shipping destinations, and the defaults the Monitoring stack is built from."""

from __future__ import annotations

import dataclasses

import pytest

from config.aws_limits import default_max_connections
from config.environments import PRODUCTION
from config.schema import AlertingConfig, DatabaseAlarmThresholds, SlackChannelConfig
from config.validation import ConfigError

DESTINATION_ARN = "arn:aws:logs:us-east-1:333333333333:destination:central-logs"


def _alerting(**changes):
    return dataclasses.replace(PRODUCTION.alerting, **changes)


@pytest.mark.parametrize(
    ("changes", "field", "hint"),
    [
        ({"email_addresses": ("not-an-address",)}, "alerting.email_addresses", "not an email address"),
        ({"email_addresses": ("a@b",)}, "alerting.email_addresses", "not an email address"),
        ({"email_addresses": ("a@example.com", "a@example.com")}, "alerting.email_addresses", "twice"),
        ({"email_addresses": ()}, "alerting.email_addresses", "reach nobody"),
        (
            {"instance_event_categories": ("failover", "fail over")},
            "alerting.instance_event_categories",
            "fail over",
        ),
        ({"instance_event_categories": ()}, "alerting.instance_event_categories", "nothing"),
        (
            {"parameter_group_event_categories": ("failure",)},
            "alerting.parameter_group_event_categories",
            "failure",
        ),
        (
            {"security_group_event_categories": ("deletion",)},
            "alerting.security_group_event_categories",
            "allowed",
        ),
        ({"snapshot_event_categories": ("backup",)}, "alerting.snapshot_event_categories", "db-snapshot"),
        ({"cloudtrail_log_group_name": "has spaces"}, "alerting.cloudtrail_log_group_name", "log group name"),
        (
            {"central_log_destination_arn": "arn:aws:logs:us-east-1:123:destination:x"},
            "alerting.central_log_destination_arn",
            "destination ARN",
        ),
        (
            {"central_log_destination_arn": "arn:aws:kinesis:us-east-1:333333333333:stream/logs"},
            "alerting.central_log_destination_arn",
            "destination ARN",
        ),
    ],
)
def test_alerting_rules_reject_bad_values(changes, field, hint):
    with pytest.raises(ConfigError, match=hint) as raised:
        _alerting(**changes)
    assert raised.value.field_path == field


def test_a_well_formed_destination_and_slack_channel_are_accepted():
    alerting = _alerting(
        central_log_destination_arn=DESTINATION_ARN,
        slack=SlackChannelConfig(workspace_id="T01ABCDEF23", channel_id="C04ABCDEF56"),
        email_addresses=(),
    )
    assert alerting.slack is not None


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"workspace_id": "t01abcdef23"}, "alerting.slack.workspace_id"),
        ({"workspace_id": "W01ABCDEF23"}, "alerting.slack.workspace_id"),
        ({"channel_id": "#alerts"}, "alerting.slack.channel_id"),
        ({"channel_id": "C12"}, "alerting.slack.channel_id"),
    ],
)
def test_malformed_slack_ids_are_rejected(changes, field):
    with pytest.raises(ConfigError) as raised:
        SlackChannelConfig(**{"workspace_id": "T01ABCDEF23", "channel_id": "C04ABCDEF56", **changes})
    assert raised.value.field_path == field


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"cpu_utilization_percent": 0}, "alerting.thresholds.cpu_utilization_percent"),
        ({"cpu_utilization_percent": 101}, "alerting.thresholds.cpu_utilization_percent"),
        ({"free_storage_min_percent": 0.5}, "alerting.thresholds.free_storage_min_percent"),
        ({"database_connections_percent": 150}, "alerting.thresholds.database_connections_percent"),
        ({"freeable_memory_min_mib": 0}, "alerting.thresholds.freeable_memory_min_mib"),
        ({"read_latency_max_seconds": -1}, "alerting.thresholds.read_latency_max_seconds"),
        ({"write_latency_max_seconds": 0}, "alerting.thresholds.write_latency_max_seconds"),
        ({"disk_queue_depth_max": 0}, "alerting.thresholds.disk_queue_depth_max"),
        ({"swap_usage_max_mib": -5}, "alerting.thresholds.swap_usage_max_mib"),
        ({"lambda_errors_max": 0}, "alerting.thresholds.lambda_errors_max"),
        ({"evaluation_periods": 0}, "alerting.thresholds.evaluation_periods"),
        ({"max_connections": 0}, "alerting.thresholds.max_connections"),
        ({"period_seconds": 120}, "alerting.thresholds.period_seconds"),
    ],
)
def test_thresholds_reject_bad_values(changes, field):
    with pytest.raises(ConfigError) as raised:
        DatabaseAlarmThresholds(**changes)
    assert raised.value.field_path == field
    assert field in str(raised.value)


def test_unknown_instance_class_needs_explicit_max_connections():
    database = dataclasses.replace(PRODUCTION.database, instance_class="x2g.large")
    with pytest.raises(ConfigError, match=r"x2g\.large") as raised:
        dataclasses.replace(PRODUCTION, database=database)
    assert raised.value.field_path == "alerting.thresholds.max_connections"
    explicit = dataclasses.replace(
        PRODUCTION,
        database=database,
        alerting=_alerting(thresholds=DatabaseAlarmThresholds(max_connections=2000)),
    )
    assert explicit.max_connections == 2000


def test_default_max_connections_follows_the_rds_formula():
    assert default_max_connections("t4g.micro") == 112
    assert default_max_connections("r7g.large") == 1802
    assert default_max_connections("r7g.8xlarge") == 5000  # LEAST(..., 5000)
    assert default_max_connections("x2g.large") is None


def test_retention_outside_cloudwatch_values_is_rejected():
    # The log groups this issue ships take their retention from the database config.
    with pytest.raises(ConfigError) as raised:
        dataclasses.replace(PRODUCTION.database, log_retention_days=366)
    assert raised.value.field_path == "database.log_retention_days"


def test_the_issue_s_event_categories_are_the_defaults():
    alerting = AlertingConfig(email_addresses=("a@example.com",))
    assert set(alerting.instance_event_categories) == {
        "availability", "backup", "configuration change", "deletion", "failover", "failure",
        "low storage", "maintenance", "notification", "recovery", "restoration", "security patching",
    }  # fmt: skip
    assert alerting.parameter_group_event_categories == ("configuration change",)
    assert alerting.security_group_event_categories == ("configuration change", "failure")
    assert alerting.snapshot_event_categories == ("creation", "deletion", "failure", "restoration")


def test_production_audits_through_cloudtrail_metric_filters():
    assert PRODUCTION.alerting.cloudtrail_log_group_name == "/aws/cloudtrail/revenuepilot-production"
