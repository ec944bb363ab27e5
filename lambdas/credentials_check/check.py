"""Does AWSCURRENT log in for both application roles? If not, repair the known half-finished states.

Run every 15 minutes (and safe to run at any time: every change is made under the credentials lock, on a
state re-read under that lock, and only ever to a password AWSCURRENT or the in-flight AWSPENDING holds):

* **a rotation stopped after the database got the pending passwords** (AWSPENDING distinct from
  AWSCURRENT, at least one user logs in with it): *complete* it: set the pending password for a user
  that lacks it, prove both log in (and ``app_user`` has USAGE), move AWSCURRENT. If that fails, restore.
* **AWSCURRENT's passwords are not in the database** (no rotation reached the database): *restore*,
  user by user, as the master.
* **endpoint drift** (the function is configured with the instance endpoint and AWSCURRENT names
  another): write a new AWSCURRENT version with the configured endpoint, passwords unchanged.
* **a leftover AWSPENDING label on the AWSCURRENT version** (a finishSecret cut short): remove it.

The report says whether AWSCURRENT works at the end (the ``CredentialsCheckFailed`` metric) and what was
repaired; it never holds a secret value.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from functools import partial

from contract.secret import AppSecret
from lambdas.common.credentials import (
    InFlight,
    MasterSession,
    clear_pending_label,
    current_version_or_none,
    in_flight_rotation,
    login_works,
    move_current,
    prove_login,
    restore_each,
    set_password_if_stale,
)
from lambdas.common.db import ConnectionFactory, Endpoint, describe_error
from lambdas.common.environment import ConfiguredEndpoint
from lambdas.common.master import Sleep, connect_as_master
from lambdas.common.role_guard import RoleNames, check_usernames
from lambdas.common.secret_store import AWSCURRENT, AWSPENDING, SecretStore
from lambdas.credentials_check.metrics import CHECK_FAILED_METRIC, REPAIRED_METRIC


@dataclass(frozen=True, kw_only=True)
class CheckDeps:
    store: SecretStore
    connect: ConnectionFactory
    app_secret_id: str
    master_secret_id: str
    schemas: tuple[str, ...]
    roles: RoleNames = field(default_factory=RoleNames)
    endpoint: ConfiguredEndpoint | None = None
    sleep: Sleep = time.sleep


@dataclass
class CheckReport:
    """What the check found and did (user names, version ids, reasons: never a password)."""

    healthy: bool = False
    repaired: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def metric_values(self) -> dict[str, int]:
        return {CHECK_FAILED_METRIC: 0 if self.healthy else 1, REPAIRED_METRIC: int(bool(self.repaired))}


def target_endpoint(deps: CheckDeps, current: AppSecret) -> Endpoint:
    if deps.endpoint is not None:
        return Endpoint(host=deps.endpoint.host, port=deps.endpoint.port, database=current.database)
    return Endpoint(host=current.host, port=current.port, database=current.database)


def read_current(deps: CheckDeps) -> tuple[str | None, AppSecret]:
    version = current_version_or_none(deps.store, deps.app_secret_id)
    current = AppSecret.parse(deps.store.get_string(deps.app_secret_id, stage=AWSCURRENT))
    check_usernames(current, deps.roles, what="AWSCURRENT")
    return version, current


def broken_users(deps: CheckDeps, endpoint: Endpoint, secret: AppSecret) -> list[str]:
    return [user.username for user in secret.users if not login_works(deps.connect, endpoint, user)]


def _drifted(deps: CheckDeps, current: AppSecret) -> bool:
    return deps.endpoint is not None and (current.host, current.port) != (
        deps.endpoint.host,
        deps.endpoint.port,
    )


def _leftover_pending_label(deps: CheckDeps, version: str | None) -> bool:
    if version is None:
        return False
    return AWSPENDING in deps.store.describe(deps.app_secret_id).version_stages.get(version, [])


def run_check(deps: CheckDeps) -> CheckReport:
    """Check, repair what is known to be repairable, check again. Never raises."""
    report = CheckReport()
    try:
        version, current = read_current(deps)
        endpoint = target_endpoint(deps, current)
        broken = broken_users(deps, endpoint, current)
        if broken or _drifted(deps, current) or _leftover_pending_label(deps, version):
            _repair(deps, report)
            version, current = read_current(deps)
            broken = broken_users(deps, target_endpoint(deps, current), current)
        report.healthy = not broken
        report.problems.extend(f"AWSCURRENT does not log in for {name}" for name in broken)
    except Exception as exc:
        report.healthy = False
        report.problems.append(describe_error(exc))
    return report


def _repair(deps: CheckDeps, report: CheckReport) -> None:
    _, first_look = read_current(deps)
    endpoint = target_endpoint(deps, first_look)
    open_master = partial(
        connect_as_master, deps.store, deps.master_secret_id, deps.connect, endpoint, sleep=deps.sleep
    )
    with MasterSession(open_master) as session:
        session.connection()  # the credentials lock: no rotation step or bootstrap changes anything now
        version, current = read_current(deps)  # re-read under the lock
        if target_endpoint(deps, current) != endpoint:
            # The bootstrap moved the endpoint meanwhile: never write the one we started with.
            report.problems.append("the endpoint changed while the check ran; next run repairs")
            return
        if broken_users(deps, endpoint, current):
            rotation = in_flight_rotation(deps.store, deps.app_secret_id, deps.roles)
            if rotation is not None and _reached_database(deps, endpoint, rotation):
                version, current = _complete(deps, session, endpoint, version, current, rotation, report)
            else:
                _restore(deps, session, endpoint, current, report)
        if (current.host, current.port) != (endpoint.host, endpoint.port):  # drift, or a stale pending copy
            moved = replace(current, host=endpoint.host, port=endpoint.port)
            if not broken_users(deps, endpoint, moved):
                deps.store.put_string(deps.app_secret_id, moved.serialize(), stages=[AWSCURRENT])
                report.repaired.append("endpoint")
                version = current_version_or_none(deps.store, deps.app_secret_id)
        if version is not None and clear_pending_label(deps.store, deps.app_secret_id, version):
            report.repaired.append("leftover AWSPENDING label")


def _reached_database(deps: CheckDeps, endpoint: Endpoint, rotation: InFlight) -> bool:
    return any(login_works(deps.connect, endpoint, user) for user in rotation.secret.users)


def _complete(
    deps: CheckDeps,
    session: MasterSession,
    endpoint: Endpoint,
    version: str | None,
    current: AppSecret,
    rotation: InFlight,
    report: CheckReport,
) -> tuple[str | None, AppSecret]:
    """Finish the stopped rotation (its passwords already reached the database); restore if that fails."""
    try:
        for user in rotation.secret.users:
            set_password_if_stale(session, deps.connect, endpoint, user)
        prove_login(deps.connect, endpoint, rotation.secret, deps.schemas)
        move_current(deps.store, deps.app_secret_id, to_version=rotation.version_id, from_version=version)
    except Exception as exc:
        where = current_version_or_none(deps.store, deps.app_secret_id)
        if where != rotation.version_id:
            report.problems.append(
                f"could not complete rotation {rotation.version_id}: {describe_error(exc)}"
            )
            if where is None:
                raise  # where AWSCURRENT points is unknown: change nothing more, try again next time
            _restore(deps, session, endpoint, current, report)
            return version, current
    report.repaired.append(f"completed rotation {rotation.version_id}")
    return rotation.version_id, rotation.secret


def _restore(
    deps: CheckDeps, session: MasterSession, endpoint: Endpoint, current: AppSecret, report: CheckReport
) -> None:
    result = restore_each(session, deps.connect, endpoint, current)
    report.repaired.extend(f"restored {name}" for name in result.restored)
    report.problems.extend(f"could not restore {name}: {reason}" for name, reason in result.failed.items())
