"""Replacement guard: fail when a change would replace or delete a stateful resource.

Compares the templates of a base assembly with those of a new one, stack by stack, and reports
every stateful resource (database, its key, secrets, log groups, backup vault, parameter and
subnet groups) that CloudFormation would delete, replace, or (for the parameter group) change in
a way that needs a database reboot. A second, independent signal is the CDK CLI's own `cdk diff`
output, which marks property changes that "require replacement" from its resource spec;
`parse_cdk_diff` turns those marks into findings too.

Everything here except `main` is a pure function over template dicts, so it is unit-tested on
small hand-written templates (tests/test_tooling/test_replacement_guard.py).

Usage: python -m tools.replacement_guard --base <assembly dir> --new <assembly dir>
       [--allow Staging/Data/DatabaseInstanceAA8A5FDE ...]
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from contract.names import RESTORE_CUTOVER_METADATA
from tools.assembly import stack_artifacts

# Properties whose change makes CloudFormation create a new resource and delete the old one.
# Source: the CloudFormation resource schemas as shipped in the pinned CDK CLI's spec database
# (node_modules/aws-cdk/db.json.gz, `causesReplacement`), cross-checked with the CloudFormation
# template reference ("Update requires: Replacement"). "yes" entries are listed as is; of the
# "maybe" (conditional) entries we keep those that do replace a single RDS for PostgreSQL instance.
REPLACEMENT_PROPERTIES: dict[str, frozenset[str]] = {
    "AWS::RDS::DBInstance": frozenset(
        {
            # "yes" in the spec
            "BackupTarget",
            "CharacterSetName",
            "CustomIAMInstanceProfile",
            "DBClusterIdentifier",
            "DBInstanceIdentifier",
            "DBName",
            "DBSubnetGroupName",  # "in some cases" in the docs: moving VPCs; the spec says yes
            "DBSystemId",
            "KmsKeyId",
            "MasterUsername",
            "NcharCharacterSetName",
            "Port",
            "SourceRegion",
            "StorageEncrypted",
            "Timezone",
            # "maybe" in the spec, replacing for a non-Aurora instance
            "AvailabilityZone",  # single-AZ placement; Multi-AZ instances ignore it, but be safe
            "DBClusterSnapshotIdentifier",
            "DBSnapshotIdentifier",  # restoring from (another) snapshot is a new instance
            "Engine",  # e.g. postgres -> aurora-postgresql
            "PerformanceInsightsKMSKeyId",  # cannot be changed once set
            "RestoreTime",
            "SourceDBClusterIdentifier",
            "SourceDBInstanceAutomatedBackupsArn",
            "SourceDBInstanceIdentifier",
            "SourceDbiResourceId",
            "UseLatestRestorableTime",
        }
    ),
    "AWS::RDS::DBSubnetGroup": frozenset({"DBSubnetGroupName"}),
    "AWS::RDS::DBParameterGroup": frozenset({"DBParameterGroupName", "Description", "Family"}),
    # The spec lists none (the registry schema has no create-only properties), but the template
    # reference warns that changing these schedules the existing key for deletion and creates a new one.
    "AWS::KMS::Key": frozenset({"KeySpec", "KeyUsage", "MultiRegion", "Origin"}),
    "AWS::SecretsManager::Secret": frozenset({"Name"}),
    "AWS::Logs::LogGroup": frozenset({"LogGroupName"}),
    "AWS::Backup::BackupVault": frozenset({"BackupVaultName", "EncryptionKeyArn"}),
}
STATEFUL_TYPES = frozenset(REPLACEMENT_PROPERTIES)

# RDS for PostgreSQL 17 parameters we set (or may set) whose apply type is "dynamic": a change is
# applied without a reboot. Anything else changed in a parameter group is treated as static (a
# pending-reboot of the production database), including parameters not listed here: add one only
# after checking its apply type (`aws rds describe-engine-default-parameters --db-parameter-group-family postgres17`).
DYNAMIC_POSTGRES_PARAMETERS = frozenset(
    {
        "rds.force_ssl",
        "ssl_min_protocol_version",
        "ssl_max_protocol_version",
        "password_encryption",
        "log_min_duration_statement",
        "log_statement",
        "log_parameter_max_length",
        "log_parameter_max_length_on_error",
        "log_min_error_statement",
        "log_min_messages",
        "log_connections",
        "log_disconnections",
        "log_lock_waits",
        "log_temp_files",
        "log_autovacuum_min_duration",
        "statement_timeout",
        "idle_in_transaction_session_timeout",
        "work_mem",
        "maintenance_work_mem",
        # pgAudit's settings are dynamic; loading the library (shared_preload_libraries) is not.
        "pgaudit.log",
        "pgaudit.log_parameter",
        "pgaudit.log_catalog",
        "pgaudit.log_relation",
        "pgaudit.log_level",
        "pgaudit.log_statement_once",
        "pgaudit.role",
    }
)
# Known static ones, for a precise message (the rule above already treats them as static).
STATIC_POSTGRES_PARAMETERS = frozenset(
    {
        "shared_preload_libraries",
        "max_connections",
        "shared_buffers",
        "rds.logical_replication",
        "max_wal_senders",
        "max_replication_slots",
        "max_worker_processes",
        "max_locks_per_transaction",
        "max_prepared_transactions",
        "track_activity_query_size",
        "huge_pages",
        "wal_buffers",
        "autovacuum_max_workers",
        "pg_stat_statements.max",
        "cron.database_name",
    }
)

RETAINING_POLICIES = frozenset({"Retain", "RetainExceptOnCreate", "Snapshot"})

BLOCKING = ("delete", "replace", "reboot", "unprotect", "invalid", "refuse")
# Blocking whatever ALLOW_REPLACE says: no PR can mean these.
NEVER_ALLOWED = ("refuse",)


@dataclass(frozen=True)
class Finding:
    """One stateful resource that the change would endanger."""

    environment: str
    stack: str
    logical_id: str
    resource_type: str
    action: str  # delete | replace | reboot | unprotect | invalid | refuse | warning
    detail: str  # which property triggers it, and how
    source: str = "templates"  # templates | cdk diff

    @property
    def key(self) -> str:
        return f"{self.environment}/{self.stack}/{self.logical_id}"

    @property
    def blocking(self) -> bool:
        return self.action in BLOCKING

    def message(self) -> str:
        return (
            f"{self.action.upper()}: {self.environment}/{self.stack} {self.logical_id} "
            f"({self.resource_type}): {self.detail} [{self.source}]"
        )


def _resources(template: Mapping[str, Any] | None) -> dict[str, dict[str, Any]]:
    if not template:
        return {}
    return dict(template.get("Resources", {}))


def references(value: Any) -> set[str]:
    """Logical ids that a property value refers to (Ref, Fn::GetAtt, ${X} in Fn::Sub)."""
    found: set[str] = set()
    if isinstance(value, dict):
        for key, inner in value.items():
            if key == "Ref" and isinstance(inner, str):
                found.add(inner)
            elif key == "Fn::GetAtt":
                target = inner[0] if isinstance(inner, list) else str(inner).split(".")[0]
                found.add(target)
            elif key == "Fn::Sub":
                text = inner[0] if isinstance(inner, list) else inner
                found.update(m.split(".")[0] for m in re.findall(r"\$\{([^}!]+)\}", str(text)))
                found.update(references(inner))
            else:
                found.update(references(inner))
    elif isinstance(value, list):
        for inner in value:
            found.update(references(inner))
    return found


def _major_version(version: Any) -> str | None:
    return str(version).split(".")[0] if isinstance(version, str | int | float) else None


def _parameter_findings(environment: str, stack: str, logical_id: str, old: Any, new: Any) -> list[Finding]:
    old_parameters = old if isinstance(old, dict) else {}
    new_parameters = new if isinstance(new, dict) else {}
    findings = []
    for name in sorted(set(old_parameters) | set(new_parameters)):
        if old_parameters.get(name) == new_parameters.get(name) or name in DYNAMIC_POSTGRES_PARAMETERS:
            continue
        kind = "static" if name in STATIC_POSTGRES_PARAMETERS else "not known to be dynamic"
        findings.append(
            Finding(
                environment,
                stack,
                logical_id,
                "AWS::RDS::DBParameterGroup",
                "reboot",
                f"Parameters.{name} ({kind}) {old_parameters.get(name)!r} -> {new_parameters.get(name)!r}: "
                "the instance goes to pending-reboot",
            )
        )
    return findings


def _major_upgrade_finding(
    environment: str,
    stack: str,
    logical_id: str,
    old_properties: Mapping[str, Any],
    new_properties: Mapping[str, Any],
    new_resources: Mapping[str, Any],
) -> Finding | None:
    """A major version change: an in-place upgrade of the same instance when it is well-formed, else invalid."""
    old_major = _major_version(old_properties.get("EngineVersion"))
    new_major = _major_version(new_properties.get("EngineVersion"))
    if old_major == new_major:
        return None
    family = f"postgres{new_major}"
    group_ids = references(new_properties.get("DBParameterGroupName"))
    new_family_group = next(
        (
            g
            for g in sorted(group_ids)
            if new_resources.get(g, {}).get("Properties", {}).get("Family") == family
        ),
        None,
    )
    if new_properties.get("AllowMajorVersionUpgrade") is True and new_family_group is not None:
        return Finding(
            environment, stack, logical_id, "AWS::RDS::DBInstance", "warning",
            f"in-place major upgrade {old_major} -> {new_major} of the SAME instance (not a replacement). Order: "
            f"CloudFormation creates parameter group {new_family_group} ({family}) first (the instance refers to "
            "it), then modifies the instance (EngineVersion, DBParameterGroupName, AllowMajorVersionUpgrade): "
            "downtime while both Multi-AZ instances upgrade and reboot (minutes to tens of minutes); the old "
            "parameter group stays until the follow-up deploy. Deploy in the maintenance window, staging first, "
            "after a manual snapshot (README: Upgrading PostgreSQL)",
        )  # fmt: skip
    missing = [
        text
        for text, absent in (
            ("AllowMajorVersionUpgrade: true", new_properties.get("AllowMajorVersionUpgrade") is not True),
            (f"a parameter group of family {family}", new_family_group is None),
        )
        if absent
    ]
    return Finding(
        environment, stack, logical_id, "AWS::RDS::DBInstance", "invalid",
        f"EngineVersion major {old_major} -> {new_major} without {' and '.join(missing)}: RDS refuses the update "
        "(set database.upgrading_from_engine_version in config)",
    )  # fmt: skip


def _restore_source_findings(
    environment: str, stack: str, logical_id: str, old: Mapping[str, Any], new: Mapping[str, Any]
) -> list[Finding]:
    """What a change of DBSnapshotIdentifier means beyond "replace" (decision 0007).

    - Removed: CloudFormation creates an EMPTY instance and deletes the restored one ("if you don't
      specify the DBSnapshotIdentifier property, an empty DB instance is created, and the original DB
      instance is deleted": AWS::RDS::DBInstance, DBSnapshotIdentifier, CloudFormation template reference).
      After an approved cutover never what a PR means: refused. Otherwise (staging) a warning beside the
      blocking replacement.
    - Changed under an approved cutover whose change ticket did not change: a new snapshot reusing an old
      approval. Refused: the cutover record must be a new one.
    """
    old_snapshot = old.get("Properties", {}).get("DBSnapshotIdentifier")
    new_snapshot = new.get("Properties", {}).get("DBSnapshotIdentifier")
    if old_snapshot == new_snapshot:
        return []
    old_approval = old.get("Metadata", {}).get(RESTORE_CUTOVER_METADATA) or {}
    new_approval = new.get("Metadata", {}).get(RESTORE_CUTOVER_METADATA) or {}
    if new_snapshot is None:
        # An approved (production) cutover: never. Elsewhere (a staging reset) the replacement finding
        # blocks until allowed; this says what the replacement would bring.
        return [
            Finding(
                environment, stack, logical_id, "AWS::RDS::DBInstance", "refuse" if old_approval else "warning",
                f"DBSnapshotIdentifier {old_snapshot!r} removed: CloudFormation would create an EMPTY instance "
                "and delete the restored one. Keep database.restore_from_snapshot_identifier (and its "
                "restore_cutover) in config for as long as this instance lives",
            )
        ]  # fmt: skip
    if old_approval and new_approval.get("ChangeTicket") == old_approval.get("ChangeTicket"):
        return [
            Finding(
                environment, stack, logical_id, "AWS::RDS::DBInstance", "refuse",
                f"DBSnapshotIdentifier {old_snapshot!r} -> {new_snapshot!r} under the approval of "
                f"{old_approval.get('ChangeTicket')!r}, which was given for {old_snapshot!r}: a new cutover "
                "needs a new database.restore_cutover (change ticket and approvers)",
            )
        ]  # fmt: skip
    return []


def _stale_snapshot_findings(
    environment: str,
    stack: str,
    base_resources: Mapping[str, Any],
    new_resources: Mapping[str, Any],
    replaced: Mapping[str, str],
) -> list[Finding]:
    """A new instance that would be created from the snapshot the current one was created from (decision 0007).

    After a cutover, `DBSnapshotIdentifier` stays in the template for as long as the instance lives. Any
    later replacement of that instance, for whatever reason, makes CloudFormation create the new instance
    from that same, possibly months-old, snapshot: every write since the cutover is lost. No PR can mean
    that, so ALLOW_REPLACE does not accept it. The same holds for an instance under a new logical id (the
    old one deleted) carrying the identifier. A new approved cutover changes the identifier, so it is not
    this finding.
    """
    findings: list[Finding] = []
    instances = {
        logical_id: resource
        for logical_id, resource in base_resources.items()
        if resource.get("Type") == "AWS::RDS::DBInstance"
    }
    for logical_id, old in sorted(instances.items()):
        snapshot = old.get("Properties", {}).get("DBSnapshotIdentifier")
        if snapshot is None:
            continue
        if logical_id in new_resources:
            successors = [logical_id] if logical_id in replaced else []
        else:
            successors = sorted(
                other
                for other, resource in new_resources.items()
                if resource.get("Type") == "AWS::RDS::DBInstance" and other not in base_resources
            )
        for successor in successors:
            if new_resources[successor].get("Properties", {}).get("DBSnapshotIdentifier") != snapshot:
                continue
            why = replaced.get(logical_id, f"logical id {logical_id} -> {successor}")
            findings.append(
                Finding(
                    environment, stack, successor, "AWS::RDS::DBInstance", "refuse",
                    f"the instance is replaced ({why}) while DBSnapshotIdentifier stays {snapshot!r}: "
                    f"CloudFormation would create the new instance from that snapshot, the one the current "
                    "instance was restored from, and every write since then would be LOST. Avoid the "
                    "replacement; if it is truly needed, take a fresh snapshot of the current instance and make "
                    "it a new approved cutover (new restore_from_snapshot_identifier and restore_cutover with a "
                    "new change ticket and approvers, decision 0007). ALLOW_REPLACE cannot accept this",
                )
            )  # fmt: skip
    return findings


def compare_stack(
    environment: str,
    stack: str,
    base: Mapping[str, Any] | None,
    new: Mapping[str, Any] | None,
) -> list[Finding]:
    """Findings for one stack. `base` None: the stack is new. `new` None: it left the app."""
    base_resources, new_resources = _resources(base), _resources(new)
    findings: list[Finding] = []
    if new is None:
        for logical_id, resource in sorted(base_resources.items()):
            if resource.get("Type") in STATEFUL_TYPES:
                findings.append(
                    Finding(
                        environment,
                        stack,
                        logical_id,
                        resource["Type"],
                        "warning",
                        "the stack is no longer in the app; deleting the stack would delete this resource "
                        f"unless its DeletionPolicy ({resource.get('DeletionPolicy', 'Delete')}) keeps it",
                    )
                )
        return findings

    replaced: dict[str, str] = {}  # logical id -> why
    for logical_id, old in sorted(base_resources.items()):
        resource_type = old.get("Type", "")
        if resource_type not in STATEFUL_TYPES:
            continue
        current = new_resources.get(logical_id)
        if current is None:
            renamed = sorted(
                other
                for other, resource in new_resources.items()
                if resource.get("Type") == resource_type and other not in base_resources
            )
            hint = (
                f"; new {resource_type} {', '.join(renamed)} would be a different resource" if renamed else ""
            )
            policy = old.get("DeletionPolicy", "Delete")
            findings.append(
                Finding(
                    environment,
                    stack,
                    logical_id,
                    resource_type,
                    "delete",
                    f"logical id removed (DeletionPolicy {policy}){hint}",
                )
            )
            continue
        if current.get("Type") != resource_type:
            replaced[logical_id] = f"type changed to {current.get('Type')}"
            continue
        old_properties = old.get("Properties", {})
        new_properties = current.get("Properties", {})
        for name in sorted(REPLACEMENT_PROPERTIES[resource_type]):
            if old_properties.get(name) != new_properties.get(name):
                replaced.setdefault(
                    logical_id, f"{name} {old_properties.get(name)!r} -> {new_properties.get(name)!r}"
                )
        if resource_type == "AWS::RDS::DBParameterGroup":
            findings.extend(
                _parameter_findings(
                    environment,
                    stack,
                    logical_id,
                    old_properties.get("Parameters"),
                    new_properties.get("Parameters"),
                )
            )
        if resource_type == "AWS::RDS::DBInstance":
            finding = _major_upgrade_finding(
                environment, stack, logical_id, old_properties, new_properties, new_resources
            )
            if finding is not None:
                findings.append(finding)
            findings.extend(_restore_source_findings(environment, stack, logical_id, old, current))
        for policy in ("DeletionPolicy", "UpdateReplacePolicy"):
            if old.get(policy) in RETAINING_POLICIES and current.get(policy) not in RETAINING_POLICIES:
                findings.append(
                    Finding(
                        environment,
                        stack,
                        logical_id,
                        resource_type,
                        "unprotect",
                        f"{policy} {old.get(policy)} -> {current.get(policy, 'Delete')}",
                    )
                )

    # A replaced resource gets a new physical id: stateful resources that name it in a
    # replacement-forcing property (e.g. KmsKeyId -> the key) are replaced with it.
    changed = True
    while changed:
        changed = False
        for logical_id, current in sorted(new_resources.items()):
            resource_type = current.get("Type", "")
            if (
                resource_type not in STATEFUL_TYPES
                or logical_id in replaced
                or logical_id not in base_resources
            ):
                continue
            for name in sorted(REPLACEMENT_PROPERTIES[resource_type]):
                causes = references(current.get("Properties", {}).get(name)) & set(replaced)
                if causes:
                    cause = sorted(causes)[0]
                    replaced[logical_id] = f"{name} refers to {cause}, which is replaced"
                    changed = True
                    break

    for logical_id, why in sorted(replaced.items()):
        findings.append(
            Finding(environment, stack, logical_id, base_resources[logical_id]["Type"], "replace", why)
        )
    findings.extend(_stale_snapshot_findings(environment, stack, base_resources, new_resources, replaced))
    return sorted(findings, key=lambda f: (f.logical_id, f.action, f.detail))


def compare_assemblies(
    base: Mapping[str, Mapping[str, Any]], new: Mapping[str, Mapping[str, Any]]
) -> list[Finding]:
    """Findings for every stack; both arguments map display names ("Staging/Data") to templates."""
    findings: list[Finding] = []
    for display_name in sorted(set(base) | set(new)):
        environment, _, stack = display_name.rpartition("/")
        findings.extend(compare_stack(environment, stack, base.get(display_name), new.get(display_name)))
    return findings


# `cdk diff` prints e.g.
#   [~] AWS::RDS::DBInstance Database/Instance DatabaseInstanceAA8A5FDE replace
#    └─ [~] Port (requires replacement)
#   [-] AWS::KMS::Key Key Key961B73FD destroy
_RESOURCE_LINE = re.compile(
    r"^\[(?P<op>[-+~])\]\s+(?P<type>[A-Za-z0-9]+::[A-Za-z0-9]+::[A-Za-z0-9]+)\s+(?P<rest>.+?)"
    r"(?:\s+(?P<impact>replace|may be replaced|destroy|orphan))?\s*$"
)
_PROPERTY_LINE = re.compile(
    r"\[[-+~]\]\s+(?P<property>[A-Za-z0-9.]+)\s+\((?P<why>requires replacement|may cause replacement)\)"
)
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def parse_cdk_diff(environment: str, stack: str, output: str) -> list[Finding]:
    """Stateful resources that the CDK CLI's diff marks as destroyed or (maybe) replaced."""
    findings: list[Finding] = []
    current: tuple[str, str, str] | None = None  # type, id, impact
    properties: dict[tuple[str, str], list[str]] = {}
    for raw in output.splitlines():
        line = _ANSI.sub("", raw).strip()
        match = _RESOURCE_LINE.match(line)
        if match:
            op, impact = match["op"], match["impact"] or ""
            if op == "-" and not impact:
                impact = "destroy"
            logical_id = match["rest"].split()[-1]  # after the optional construct path
            current = (match["type"], logical_id, impact)
            if match["type"] in STATEFUL_TYPES and impact in ("replace", "may be replaced", "destroy"):
                properties.setdefault((match["type"], logical_id), []).append(impact)
            continue
        prop = _PROPERTY_LINE.search(line)
        if prop and current and current[0] in STATEFUL_TYPES:
            properties.setdefault((current[0], current[1]), []).append(f"{prop['property']} ({prop['why']})")
    for (resource_type, logical_id), marks in sorted(properties.items()):
        impacts = [m for m in marks if m in ("replace", "may be replaced", "destroy")]
        reasons = [m for m in marks if m not in impacts]
        if not impacts and not reasons:
            continue
        action = "delete" if "destroy" in impacts else "replace"
        detail = "; ".join(reasons) or impacts[0]
        if impacts == ["may be replaced"] and not reasons:
            detail = "may be replaced"
        findings.append(
            Finding(environment, stack, logical_id, resource_type, action, detail, source="cdk diff")
        )
    return findings


def blocking_findings(findings: Iterable[Finding], allowed: Iterable[str] = ()) -> list[Finding]:
    """The findings that fail the guard: `allowed` holds "Env/Stack/LogicalId" keys a PR accepts
    (except for refused changes, which no key accepts)."""
    accepted = set(allowed)
    return [
        finding
        for finding in findings
        if finding.blocking and (finding.key not in accepted or finding.action in NEVER_ALLOWED)
    ]


def report(findings: Sequence[Finding], allowed: Iterable[str] = ()) -> tuple[str, bool]:
    """Human-readable report and whether the guard passes."""
    accepted = set(allowed)
    failing = blocking_findings(findings, accepted)
    lines = []
    if not findings:
        lines.append("Replacement guard: no stateful resource is replaced, deleted or rebooted.")
    for finding in findings:
        note = (
            " (allowed)"
            if finding.blocking and finding.key in accepted and finding.action not in NEVER_ALLOWED
            else ""
        )
        lines.append(f"  {finding.message()}{note}")
    if failing:
        lines.insert(
            0,
            f"REPLACEMENT GUARD FAILED: {len(failing)} change(s) would replace, delete or reboot stateful "
            "resources. If that is intended (e.g. a staging restore), say so in the PR and rerun with "
            "ALLOW_REPLACE='<Env>/<Stack>/<LogicalId> ...'.",
        )
    elif findings:
        lines.insert(0, "Replacement guard: passed (warnings and allowed changes below).")
    return "\n".join(lines), not failing


def load_assembly(assembly_dir: Path) -> dict[str, dict[str, Any]]:
    return {name: artifact.template() for name, artifact in stack_artifacts(assembly_dir).items()}


def deployed_stack_names(assembly_dir: Path) -> dict[str, str]:
    """Display name ("Staging/Data") -> deployed stack name ("Staging-Data")."""
    return {name: artifact.stack_name for name, artifact in stack_artifacts(assembly_dir).items()}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", type=Path, required=True, help="base cloud assembly directory")
    parser.add_argument("--new", type=Path, required=True, help="new cloud assembly directory")
    parser.add_argument("--allow", nargs="*", default=[], help="Env/Stack/LogicalId keys to accept")
    args = parser.parse_args(argv)
    from tools.cross_stack_guard import cross_stack_findings  # it builds on this module's Finding

    base, new = load_assembly(args.base), load_assembly(args.new)
    findings = compare_assemblies(base, new) + cross_stack_findings(base, new, deployed_stack_names(args.new))
    text, passed = report(findings, args.allow)
    print(text)
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
