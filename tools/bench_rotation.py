"""The rotation benchmark: the four steps for both users, in-process, against a local TLS PostgreSQL.

Secrets Manager is moto (in-process), the database a throwaway PostgreSQL with TLS and its own CA
(tests/support/postgres.py), the code the rotation module the Lambda runs. Reports the median of
several rotations, each covering createSecret, setSecret, testSecret and finishSecret for both
`migration` and `app_user` (each step as a fresh invocation: new TLS connections every time).
"""

from __future__ import annotations

import json
import os
import statistics
import time
from functools import partial

REGION = "us-east-1"


def rotation_seconds(rounds: int = 5) -> float:
    """Median wall time of one full rotation (four steps, both users)."""
    import boto3
    from moto import mock_aws

    from lambdas.common.db import tls_connection_factory
    from lambdas.common.passwords import generate_password
    from lambdas.common.secret_store import SecretStore
    from lambdas.common.tls import build_ssl_context
    from lambdas.db_bootstrap.bootstrap import handle_event
    from lambdas.secret_rotation.rotation import RotationDeps, rotate
    from tests.support.moto_rotation import enable_rotation, stage_pending_version
    from tests.support.postgres import find_binaries, running_server

    binaries = find_binaries()
    if binaries is None:
        raise RuntimeError("PostgreSQL server binaries not found: apt-get install -y postgresql (or npm ci)")
    os.environ.update(
        {"AWS_DEFAULT_REGION": REGION, "AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench"}
    )
    with running_server(binaries, tls=True) as server, mock_aws():
        database = server.create_rds_like_database("revenuepilot")
        client = boto3.client("secretsmanager", region_name=REGION)
        master_arn = client.create_secret(
            Name="master",
            SecretString=json.dumps({"username": database.master_user, "password": database.master_password}),
        )["ARN"]
        app_arn = client.create_secret(
            Name="revenuepilot/bench/database",
            SecretString=json.dumps({
                "host": "localhost", "port": server.port, "database": database.name,
                "migration": {"username": "migration"}, "app_user": {"username": "app_user"},
            }),
        )["ARN"]  # fmt: skip
        store = SecretStore(client)
        connect = tls_connection_factory(build_ssl_context(server.ca_cert))
        new_password = partial(generate_password, client)
        handle_event(
            {
                "RequestType": "Create",
                "ResourceProperties": {"MasterSecretArn": master_arn, "AppSecretArn": app_arn},
            },
            store=store,
            connect=connect,
            new_password=new_password,
        )
        enable_rotation(app_arn, region=REGION)
        deps = RotationDeps(
            store=store,
            connect=connect,
            new_password=new_password,
            master_secret_id=master_arn,
            schemas=("public",),
        )
        durations = []
        for _ in range(rounds):
            token = stage_pending_version(app_arn, region=REGION)
            started = time.perf_counter()
            for step in ("createSecret", "setSecret", "testSecret", "finishSecret"):
                rotate(step, app_arn, token, deps)
            durations.append(time.perf_counter() - started)
        return statistics.median(durations)
