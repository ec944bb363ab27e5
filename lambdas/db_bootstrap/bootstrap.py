"""Create/Update/Delete logic of the database bootstrap custom resource (CDK Provider framework, onEvent).

Create/Update (idempotent): fill in the application passwords if CloudFormation created the secret
without them, then, as the RDS master user over verified TLS and under the credentials lock, create the
``migration`` and ``app_user`` roles, give each the AWSCURRENT password when that does not log in already,
and apply the privilege model. Delete does nothing: roles, schemas and data outlive the stack resource.

While a rotation is in flight (an AWSPENDING version other than AWSCURRENT holds passwords), a role whose
AWSCURRENT *or* AWSPENDING password logs in is left alone: the rotation's finishSecret proves and moves
the pending passwords, and a restore gives the current ones back. Only a role for which neither works gets
AWSCURRENT's. No other password is ever set. Usernames must be the configured role names and ordinary roles.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from contract.secret import AppSecret, Credentials, SecretFormatError, utc_timestamp
from lambdas.common.config import DEFAULT_SCHEMAS, validate_schemas
from lambdas.common.credentials import MasterSession, in_flight_pending, login_works
from lambdas.common.db import ConnectionFactory, Endpoint
from lambdas.common.master import Sleep, connect_as_master
from lambdas.common.role_guard import RoleNames, check_roles_in_database, check_usernames
from lambdas.common.roles import ensure_login_role, grant_schema_privileges, set_role_password, transaction
from lambdas.common.secret_store import AWSCURRENT, SecretStore

PasswordSource = Callable[[], str]


@dataclass(frozen=True, kw_only=True)
class BootstrapProperties:
    master_secret_arn: str
    app_secret_arn: str
    schemas: tuple[str, ...] = DEFAULT_SCHEMAS
    # The instance endpoint. CloudFormation does not put it into the secret (a template change would
    # then overwrite the passwords); the bootstrap writes it, and runs again when it changes.
    host: str | None = None
    port: int | None = None

    @classmethod
    def from_event(cls, properties: Mapping[str, Any]) -> BootstrapProperties:
        """Read the properties this resource understands; unknown ones (ServiceToken, ...) are ignored."""
        missing = [name for name in ("MasterSecretArn", "AppSecretArn") if not properties.get(name)]
        if missing:
            raise ValueError(f"missing resource properties: {', '.join(missing)}")
        schemas = properties.get("Schemas")
        if schemas is None:
            schemas = list(DEFAULT_SCHEMAS)
        if not isinstance(schemas, list):
            raise ValueError("Schemas must be a list of strings")
        port = properties.get("Port")
        if port is not None and not str(port).isdigit():
            raise ValueError("Port must be a number")
        return cls(
            master_secret_arn=str(properties["MasterSecretArn"]),
            app_secret_arn=str(properties["AppSecretArn"]),
            schemas=validate_schemas(schemas),
            host=str(properties["Endpoint"]) if properties.get("Endpoint") else None,
            port=int(port) if port is not None else None,
        )


def physical_resource_id(app_secret_arn: str) -> str:
    """Stable for a given application secret, so an Update never looks like a replacement."""
    return "db-bootstrap-" + hashlib.sha256(app_secret_arn.encode("utf-8")).hexdigest()[:24]


def ensure_app_secret(
    store: SecretStore, properties: BootstrapProperties, new_password: PasswordSource, roles: RoleNames
) -> AppSecret:
    """The AWSCURRENT application secret, complete: endpoint from the properties, both passwords.

    Writes a new AWSCURRENT version only when something was missing or the endpoint moved; the
    passwords of an existing secret are kept.
    """
    try:
        stored = json.loads(store.get_string(properties.app_secret_arn))
    except ValueError:
        raise SecretFormatError("application secret is not valid JSON") from None  # no document excerpt
    if not isinstance(stored, dict):
        raise SecretFormatError("application secret is not a JSON object")
    endpoint = {"host": properties.host or stored.get("host"), "port": properties.port or stored.get("port")}
    current = AppSecret.parse(json.dumps({**stored, **endpoint}), require_passwords=False)
    check_usernames(current, roles, what="AWSCURRENT")
    endpoint_moved = (stored.get("host"), stored.get("port")) != (current.host, current.port)
    if current.has_passwords and not endpoint_moved:
        return current
    completed = (
        current
        if current.has_passwords
        else current.with_passwords(
            migration=new_password(), app_user=new_password(), rotated_at=utc_timestamp()
        )
    )
    store.put_string(properties.app_secret_arn, completed.serialize(), stages=[AWSCURRENT])
    return completed


def _password_to_keep_or_set(
    connect: ConnectionFactory, endpoint: Endpoint, current: Credentials, pending: Credentials | None
) -> Credentials | None:
    """``None`` when the role already logs in with AWSCURRENT (or an in-flight AWSPENDING), else AWSCURRENT."""
    if login_works(connect, endpoint, current):
        return None
    if pending is not None and login_works(connect, endpoint, pending):
        return None
    return current


def bootstrap_database(
    *,
    store: SecretStore,
    properties: BootstrapProperties,
    connect: ConnectionFactory,
    new_password: PasswordSource,
    roles: RoleNames | None = None,
    sleep: Sleep = time.sleep,
) -> None:
    roles = roles or RoleNames()
    app = ensure_app_secret(store, properties, new_password, roles)
    endpoint = Endpoint(host=app.host, port=app.port, database=app.database)
    session = MasterSession(
        lambda: connect_as_master(store, properties.master_secret_arn, connect, endpoint, sleep=sleep)
    )
    with session:
        conn = session.connection()  # holds the credentials lock from here on
        check_roles_in_database(conn, [user.username for user in app.users], must_exist=False)
        pending = in_flight_pending(store, properties.app_secret_arn, roles)
        with transaction(conn):
            for user in app.users:
                ensure_login_role(conn, user.username)
        for user, pending_user in zip(app.users, pending.users if pending else (None, None), strict=True):
            to_set = _password_to_keep_or_set(connect, endpoint, user, pending_user)
            if to_set is not None:
                set_role_password(conn, to_set.username, to_set.require_password())
        with transaction(conn):
            grant_schema_privileges(
                conn,
                database=app.database,
                schemas=properties.schemas,
                migration_role=app.migration.username,
                app_role=app.app_user.username,
            )


def handle_event(
    event: Mapping[str, Any],
    *,
    store: SecretStore,
    connect: ConnectionFactory,
    new_password: PasswordSource,
    roles: RoleNames | None = None,
) -> dict[str, Any]:
    """Provider-framework onEvent. Returns only the PhysicalResourceId: never any secret data."""
    request_type = event.get("RequestType")
    if request_type == "Delete":
        # Never drop roles, schemas or data. Keep whatever id CloudFormation knows.
        physical_id = event.get("PhysicalResourceId") or "db-bootstrap-deleted"
        return {"PhysicalResourceId": physical_id}
    if request_type not in ("Create", "Update"):
        raise ValueError(f"unsupported RequestType {request_type!r}")
    properties = BootstrapProperties.from_event(event.get("ResourceProperties") or {})
    bootstrap_database(
        store=store, properties=properties, connect=connect, new_password=new_password, roles=roles
    )
    return {"PhysicalResourceId": physical_resource_id(properties.app_secret_arn)}
