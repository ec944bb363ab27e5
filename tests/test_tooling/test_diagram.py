"""docs/architecture.md is generated from the cloud assembly (tools/diagram.py) and must stay current."""

from __future__ import annotations

import re

import pytest

from tools import diagram


@pytest.fixture(scope="module")
def rendered(synthesized_app) -> str:
    return diagram.render(synthesized_app.directory)


def test_architecture_page_is_up_to_date(rendered):
    committed = diagram.DEFAULT_OUTPUT.read_text() if diagram.DEFAULT_OUTPUT.exists() else ""
    if committed != rendered:
        pytest.fail(
            "docs/architecture.md is out of date with the synthesized app: run `make diagram` and commit it",
            pytrace=False,
        )


@pytest.fixture(scope="module")
def staging(synthesized_app) -> diagram.Diagram:
    return diagram.Diagram(diagram.environments(synthesized_app.directory)["Staging"])


def _label(graph: diagram.Diagram, node_id: str) -> str:
    return graph.nodes[node_id].label()


def test_every_5432_ingress_rule_on_the_database_is_drawn(synthesized_app, staging):
    # Expected from the templates themselves: one edge per security group admitted on 5432.
    sources = set()
    for stack in ("Data", "ApplicationAccess", "Migration", "Recovery"):
        for resource in synthesized_app.template_json("Staging", stack)["Resources"].values():
            if (
                resource["Type"] == "AWS::EC2::SecurityGroupIngress"
                and resource["Properties"]["FromPort"] == 5432
            ):
                sources.add(str(resource["Properties"]["SourceSecurityGroupId"]))
    access = [edge for edge in staging.edges if edge.category == "access"]
    assert len(access) == len(sources) >= 4
    targets = {edge.target for edge in access}
    assert len(targets) == 1 and "RDS revenuepilot-staging" in _label(staging, targets.pop())
    drawn = {_label(staging, edge.source) for edge in access}
    assert any("Migration/MigrationTask/TaskDefinition" in label for label in drawn)
    assert any("ApplicationAccess/ApplicationSecurityGroup" in label for label in drawn)
    assert any("Data/CredentialsCheck/Check/Function" in label for label in drawn)
    # The master password is RDS-managed (decision 0008): no hosted rotation Lambda reaches the database.
    assert not any("AWS hosted rotation Lambda" in label for label in drawn)


def test_credentials_flow_from_the_application_secret_to_its_readers(staging):
    secret = next(n.id for n in staging.nodes.values() if "revenuepilot/staging/database" in n.label())
    readers = {
        _label(staging, e.target) for e in staging.edges if e.category == "credentials" and e.source == secret
    }
    assert any("MigrationTask/TaskDefinition" in r for r in readers)
    assert any("ApplicationAccess/TaskRole" in r for r in readers)
    assert any("ApplicationCredentials/Rotation/Function" in r for r in readers)


def test_the_database_sits_in_the_database_tier_and_the_task_in_the_application_tier(staging):
    tiers = {re.sub(r"<br/>.*", "", n.label()): n.tier for n in staging.nodes.values()}
    assert tiers["RDS revenuepilot-staging"] == "Database"
    assert tiers["ECS Fargate task"] == "Application"
