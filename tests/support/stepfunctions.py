"""Execute the synthesized runbook state machine in-process with moto (pinned 5.2.5) and jsonata-python.

moto's Step Functions interpreter (a port of LocalStack's) runs the definition from the cloud
assembly; its aws-sdk and optimized integrations call moto's own RDS, ECS, SNS and Step Functions
backends. `moto_patches()` closes the gaps found in moto 5.2.5, one patch per gap, each commented
with the gap it covers. `Runbook` creates the resources the definition refers to (resolving the
template's intrinsic functions to them), starts executions and drives them to the end, playing the
ECS tasks with a test double (`TaskPlayer`): a task's exit code, or the validate run's callback
through SendTaskSuccess/SendTaskFailure with the token the definition put into its environment.

What this cannot prove (see also ../shared/notes/local-emulation.md): IAM on the state machine
role, TimeoutSeconds and heartbeats, AWS's own JSONata engine (jsonata-python stands in), the
exact error names and causes AWS reports for service errors, timestamp formats of the context
object and of service responses, and the real ECS `.sync` semantics (a task here is RUNNING until
the double stops it).
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as datetime_module
import io
import itertools
import json
import re
import time
import types
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from unittest import mock

import boto3

STATE_MACHINE_ROLE = "runbook-state-machine"
# The Alembic revisions the double's database reports (`alembic current`): before any migration, and
# after an upgrade to a symbolic target (an exact id is reported as itself).
REVISION_BEFORE = "0a1b2c3d4e5f"
HEAD_REVISION = "fedcba987654"


# --- the moto patches ------------------------------------------------------------------------------


@dataclass
class SleepRecorder:
    """What the patches record: Wait states and Retry intervals (instead of sleeping) and started ECS tasks."""

    waits: list[tuple[str, float]] = field(default_factory=list)
    retries: list[float] = field(default_factory=list)
    started_tasks: list[str] = field(default_factory=list)  # ECS task ARNs, as RunTask creates them


@dataclass
class RdsControls:
    """Scenario knobs on moto's RDS, which has every snapshot available at once and PITR at "now"."""

    snapshot_creating_polls: int = 0  # DescribeDBSnapshots calls that still see "creating"
    latest_restorable_time: datetime | None = None  # None: now
    execution_start_time: datetime | None = None  # every execution starts at this instant (None: now)
    _polls: dict[str, int] = field(default_factory=dict)


def _evaluate_jsonata(expression: str) -> Any:
    from jsonata import Jsonata

    compiled = Jsonata(expression)
    # Step Functions' own `$parse` (not in JSONata): JSON text to a value; text that is not JSON is an error
    # (AWS: States.QueryEvaluationError).
    compiled.register_lambda("parse", lambda text: json.loads(text))
    return compiled.evaluate(None)


def _encode_declarations(bindings: dict[str, Any]) -> str:
    from moto.stepfunctions.parser.asl.utils.encoding import to_json_str

    return "".join(
        f"{name}:={to_json_str(value, separators=(',', ':'))};" for name, value in bindings.items()
    )


def _java_sdk_error_name(service_name: str, error_code: str) -> str:
    """`DBSnapshotAlreadyExists` -> `Rds.DbSnapshotAlreadyExistsException` (AWS SDK for Java v2 naming)."""
    service = {"rds": "Rds", "ecs": "Ecs", "sns": "Sns", "sfn": "Sfn", "stepfunctions": "Sfn"}.get(
        service_name.lower(), service_name[:1].upper() + service_name[1:]
    )
    name = error_code.removesuffix("Fault").removesuffix("Exception")
    name = re.sub(r"([A-Z])([A-Z]+)(?=[A-Z][a-z]|$)", lambda m: m.group(1) + m.group(2).lower(), name)
    return f"{service}.{name}Exception"


@contextlib.contextmanager
def moto_patches(recorder: SleepRecorder, rds: RdsControls) -> Iterator[None]:
    """Every moto 5.2.5 gap the runbook runs into, patched for the duration (one comment per gap)."""
    from botocore.exceptions import ClientError
    from moto.ecs import models as ecs_models
    from moto.moto_api import state_manager
    from moto.rds import models as rds_models
    from moto.stepfunctions import responses as sfn_responses
    from moto.stepfunctions.parser import models as sfn_parser_models
    from moto.stepfunctions.parser.asl.component.common.retry import retrier_decl
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import (
        state_task_service,
        state_task_service_aws_sdk,
        state_task_service_callback,
    )
    from moto.stepfunctions.parser.asl.component.state.wait.wait_function import wait_function
    from moto.stepfunctions.parser.asl.eval import states as eval_states
    from moto.stepfunctions.parser.asl.eval import variable_store
    from moto.stepfunctions.parser.asl.jsonata import jsonata as moto_jsonata

    service_task = state_task_service.StateTaskService
    models: dict[str, Any] = {}

    def operation_model(task: Any, service_name: str | None, action: str | None) -> Any:
        boto_service = task._get_boto_service_name(boto_service_name=service_name)
        snake_action = task._get_boto_service_action(service_action_name=action)
        key = f"{boto_service}:{snake_action}"
        if key not in models:
            client = boto3.session.Session().client(boto_service, region_name="us-east-1")
            api_name = client.meta.method_to_api_mapping.get(snake_action)
            models[key] = client.meta.service_model.operation_model(api_name) if api_name else None
        return models[key]

    def normalise_parameters(
        self: Any,
        parameters: dict[str, Any],
        boto_service_name: str | None = None,
        service_action_name: str | None = None,
    ) -> None:
        model = operation_model(self, boto_service_name, service_action_name)
        if model is not None and model.input_shape is not None:
            self._to_boto_request(parameters, model.input_shape)

    def normalise_response(
        self: Any, response: Any, boto_service_name: str | None = None, service_action_name: str | None = None
    ) -> None:
        model = operation_model(self, boto_service_name, service_action_name)
        if model is not None and model.output_shape is not None:
            self._from_boto_response(response, model.output_shape)

    original_from_error = state_task_service_aws_sdk.StateTaskServiceAwsSdk._from_error

    def aws_sdk_from_error(self: Any, env: Any, ex: Exception) -> Any:
        if not isinstance(ex, ClientError):
            return original_from_error(self, env, ex)
        error = _java_sdk_error_name(self.resource.api_name, ex.response["Error"]["Code"])
        cause = f"{ex.response['Error']['Message']} (Service: {error.split('.')[0]}, Status Code: 400)"
        return self._get_task_failure_event(env=env, error=error, cause=cause)

    def send_task_failure(self: Any) -> Any:
        self.stepfunction_backend.send_task_failure(
            self._get_param("taskToken"), error=self._get_param("error"), cause=self._get_param("cause")
        )
        return sfn_responses.EmptyResult()

    def record_wait(self: Any, env: Any, wait_seconds: float) -> None:
        recorder.waits.append((env.states.context_object.context_object_data["State"]["Name"], wait_seconds))

    original_task_init = ecs_models.Task.__init__

    def task_init(self: Any, *args: Any, **kwargs: Any) -> None:
        # Fargate tasks get an ENI from moto's EC2, which has no DNS name without a VPC DNS setting.
        with mock.patch.object(ecs_models, "ec2_backends", _DnsNamedEniBackends(ecs_models.ec2_backends)):
            original_task_init(self, *args, **kwargs)
        recorder.started_tasks.append(self.task_arn)  # the double learns of tasks without polling ListTasks

    original_describe_snapshots = rds_models.RDSBackend.describe_db_snapshots

    def describe_db_snapshots(self: Any, *args: Any, **kwargs: Any) -> Any:
        snapshots = original_describe_snapshots(self, *args, **kwargs)
        for snapshot in snapshots:
            polls = rds._polls.get(snapshot.db_snapshot_identifier, 0)
            rds._polls[snapshot.db_snapshot_identifier] = polls + 1
            snapshot.status = "creating" if polls < rds.snapshot_creating_polls else "available"
        return snapshots

    def latest_restorable_time(self: Any) -> datetime:
        return rds.latest_restorable_time or datetime.now(UTC)

    class _Clock(datetime_module.datetime):
        @classmethod
        def now(cls, tz: Any = None) -> Any:
            return rds.execution_start_time or datetime_module.datetime.now(tz)

    clock = types.SimpleNamespace(**{**vars(datetime_module), "datetime": _Clock})

    with contextlib.ExitStack() as stack:
        enter = stack.enter_context
        # Gap: the JSONata evaluator is stubbed out (a JVM bridge in LocalStack); jsonata-python evaluates.
        enter(mock.patch.object(moto_jsonata, "_eval_jsonata", _evaluate_jsonata))
        # Gap: string variables are spliced into JSONata as "<value>" without JSON quoting, so a quote,
        # backslash or newline in a revision or cause breaks (or changes) the expression. JSON-encode them.
        for module in (moto_jsonata, eval_states, variable_store):
            enter(mock.patch.object(module, "encode_jsonata_variable_declarations", _encode_declarations))
        # Gap: the SDK request/response name normalisation is stubbed: `DbInstanceIdentifier` must become
        # boto's `DBInstanceIdentifier` and `DBInstances` come back as `DbInstances`, as Step Functions does.
        enter(mock.patch.object(service_task, "_normalise_parameters", normalise_parameters))
        enter(mock.patch.object(service_task, "_normalise_response", normalise_response))
        # Gap: aws-sdk errors are named `<lower-case service>.<exception class>Exception` (`rds.rdsException`);
        # AWS names them after the Java SDK v2 (`Rds.DbSnapshotAlreadyExistsException`), which Retry/Catch match.
        enter(
            mock.patch.object(
                state_task_service_aws_sdk.StateTaskServiceAwsSdk, "_from_error", aws_sdk_from_error
            )
        )
        # Gap: SendTaskFailure drops its `cause` (the responses layer passes only the error).
        enter(mock.patch.object(sfn_responses.StepFunctionResponse, "send_task_failure", send_task_failure))
        # Gap: ECS awsvpc tasks fail on a missing `NetworkInterface.private_dns_name`.
        enter(mock.patch.object(ecs_models.Task, "__init__", task_init))
        # Gap: ECS tasks stop by themselves (exit code 0) after a few DescribeTasks, so every `.sync` task would
        # look successful. Manual transitions: a task runs until the test double stops it.
        state_manager.set_transition(
            model_name="ecs::task", transition={"progression": "manual", "times": 10**9}
        )
        stack.callback(state_manager.unset_transition, "ecs::task")
        # Gap (speed): Wait states, Retry intervals and the `.sync` poll really sleep. Record the waits,
        # retry at once, poll every 10 ms.
        enter(mock.patch.object(wait_function.WaitFunction, "_wait_interval", record_wait))
        enter(mock.patch.object(retrier_decl, "time", types.SimpleNamespace(sleep=recorder.retries.append)))
        enter(mock.patch.object(state_task_service_callback, "_DELAY_SECONDS_SYNC_CONDITION_CHECK", 0.01))
        # Scenario knobs, not gaps: a snapshot that stays "creating" for some polls, a stale PITR time,
        # executions that start at the same instant.
        enter(mock.patch.object(rds_models.RDSBackend, "describe_db_snapshots", describe_db_snapshots))
        enter(
            mock.patch.object(
                rds_models.DBInstance, "latest_restorable_time", property(latest_restorable_time)
            )
        )
        enter(mock.patch.object(sfn_parser_models, "datetime", clock))
        yield


class _DnsNamedEniBackends:
    """moto's ec2_backends, whose network interfaces always have a private DNS name."""

    def __init__(self, backends: Any) -> None:
        self._backends = backends

    def __getitem__(self, account: str) -> Any:
        outer = self._backends[account]

        class _Regions:
            def __getitem__(self, region: str) -> Any:
                backend = outer[region]

                class _Backend:
                    def __getattr__(self, name: str) -> Any:
                        return getattr(backend, name)

                    def create_network_interface(self, *args: Any, **kwargs: Any) -> Any:
                        eni = backend.create_network_interface(*args, **kwargs)
                        if not getattr(eni, "private_dns_name", None):
                            eni.private_dns_name = (
                                f"ip-{eni.private_ip_address.replace('.', '-')}.ec2.internal"
                            )
                        return eni

                return _Backend()

        return _Regions()


# --- the world the definition runs in ------------------------------------------------------------


@dataclass
class TaskRun:
    """One ECS task the runbook started, as the test double sees it."""

    task_arn: str
    cluster_arn: str
    command: list[str]
    environment: dict[str, str]

    @property
    def action(self) -> str:
        for word in ("upgrade", "downgrade", "validate", "current"):
            if word in self.command:
                return word
        raise AssertionError(f"unknown runner command {self.command}")

    @property
    def revision(self) -> str | None:
        index = self.command.index(self.action)
        return self.command[index + 1] if self.action in ("upgrade", "downgrade") else None


@dataclass
class TaskOutcome:
    """What the double does with a task: an exit code and, for validate, the callback."""

    exit_code: int = 0
    counts: dict[str, int] | None = None
    revisions: list[str] | None = None  # the validate run's `alembic current` (None: not reported)
    failure: tuple[str, str] | None = None  # (error, cause) sent with SendTaskFailure
    stopped_reason: str = "Essential container in task exited"


TaskPlayer = Callable[[TaskRun], TaskOutcome | None]  # None: leave the task running for now


def runner_arguments_exit_code(command: list[str]) -> int | None:
    """What the real runner's command line makes of the task's command: None if it would go on to run,
    else its exit status (argparse's `--help` exits 0 before anything runs, a bad argument 2)."""
    from migration.runner.alembic_command import RevisionError, check_revision
    from migration.runner.cli import build_parser
    from migration.runner.validation import parse_query

    try:
        # argparse prints help and usage errors itself (to the task's log in ECS); nobody reads them here.
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            args = build_parser().parse_args(command)
        if getattr(args, "revision", None) is not None:
            check_revision(args.revision)
        for query in getattr(args, "query", None) or ():
            parse_query(query)
    except SystemExit as exit_:
        return int(exit_.code or 0)
    except (RevisionError, ValueError):
        return 2
    return None


def default_player(
    counts: dict[str, int], *, migration_exit_code: int = 0, revision: str = REVISION_BEFORE
) -> TaskPlayer:
    """Tasks as the runner would end them: its own command line first (what it refuses ends the task
    with its exit status, nothing migrated), then the migration's exit code or the validate run's counts
    and revision (`revision` until a migration succeeds: then its exact target, or HEAD_REVISION)."""
    from contract.revision import is_exact_revision

    current = [revision]

    def play(run: TaskRun) -> TaskOutcome:
        early_exit = runner_arguments_exit_code(run.command)
        if early_exit is not None:
            return TaskOutcome(exit_code=early_exit)
        if run.action == "validate":
            return TaskOutcome(counts=counts, revisions=list(current))
        if migration_exit_code == 0:
            current[:] = [run.revision if run.revision and is_exact_revision(run.revision) else HEAD_REVISION]
        return TaskOutcome(exit_code=migration_exit_code)

    return play


@dataclass
class Runbook:
    """The synthesized definition deployed into moto, and the resources it refers to."""

    stage_id: str
    region: str
    account: str
    template: dict[str, Any]
    recorder: SleepRecorder
    rds_controls: RdsControls
    instance_identifier: str
    state_machine_arn: str = ""
    evidence_bucket: str = ""
    topic_arn: str = ""
    queue_url: str = ""
    cluster_arn: str = ""
    task_runs: list[TaskRun] = field(default_factory=list)
    _known_tasks: set[str] = field(default_factory=set)  # every task listed so far, across scenarios
    _finished_tasks: set[str] = field(default_factory=set)
    _names: Iterator[int] = field(default_factory=lambda: itertools.count(1))
    _clients: dict[str, Any] = field(default_factory=dict)

    def client(self, service: str) -> Any:
        if service not in self._clients:
            self._clients[service] = boto3.client(service, region_name=self.region)
        return self._clients[service]

    def reset(self) -> None:
        """Between scenarios: no instance, no snapshots, no pending notifications, knobs at default."""
        rds = self.client("rds")
        for snapshot in rds.describe_db_snapshots()["DBSnapshots"]:
            rds.delete_db_snapshot(DBSnapshotIdentifier=snapshot["DBSnapshotIdentifier"])
        for instance in rds.describe_db_instances()["DBInstances"]:
            rds.delete_db_instance(
                DBInstanceIdentifier=instance["DBInstanceIdentifier"], SkipFinalSnapshot=True
            )
        self.notifications()
        for name in self.parameters():
            self.client("ssm").delete_parameter(Name=name)
        self.clear_evidence()
        self._known_tasks.update(self.recorder.started_tasks)  # e.g. another runbook's, in the same moto
        self.task_runs.clear()
        self.recorder.waits.clear()
        self.recorder.retries.clear()
        self.rds_controls.snapshot_creating_polls = 0
        self.rds_controls.latest_restorable_time = None
        self.rds_controls.execution_start_time = None
        self.rds_controls._polls.clear()

    # -- deployment ------------------------------------------------------------------------------
    def deploy(self) -> None:
        ec2 = self.client("ec2")
        vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
        subnets = [
            ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.0.{i}.0/24")["Subnet"]["SubnetId"] for i in (1, 2)
        ]
        group = ec2.create_security_group(GroupName="migration", Description="migration", VpcId=vpc)[
            "GroupId"
        ]
        suffix = self.stage_id.lower()  # two runbooks (staging, production) can share one moto
        self.cluster_arn = self.client("ecs").create_cluster(clusterName=f"migration-{suffix}")["cluster"][
            "clusterArn"
        ]
        sns, sqs = self.client("sns"), self.client("sqs")
        self.topic_arn = sns.create_topic(Name=f"alerts-{suffix}")["TopicArn"]
        self.queue_url = sqs.create_queue(QueueName=f"alerts-inbox-{suffix}")["QueueUrl"]
        queue_arn = sqs.get_queue_attributes(QueueUrl=self.queue_url, AttributeNames=["QueueArn"])[
            "Attributes"
        ]["QueueArn"]
        sns.subscribe(TopicArn=self.topic_arn, Protocol="sqs", Endpoint=queue_arn)
        secret_arn = self.client("secretsmanager").create_secret(Name=f"app-{suffix}", SecretString="{}")[
            "ARN"
        ]
        role = self.client("iam").create_role(
            RoleName=f"{STATE_MACHINE_ROLE}-{suffix}", AssumeRolePolicyDocument="{}"
        )
        resources = self.template["Resources"]

        def resolve(value: Any) -> Any:
            if isinstance(value, str):
                return value
            if isinstance(value, list):
                return [resolve(v) for v in value]
            if not isinstance(value, dict):
                return value
            if "Fn::Join" in value:
                separator, parts = value["Fn::Join"]
                return separator.join(resolve(p) for p in parts)
            if value == {"Ref": "AWS::Partition"}:
                return "aws"
            if "Fn::GetAtt" in value:
                kind = resources[value["Fn::GetAtt"][0]]["Type"]
                return {"AWS::ECS::Cluster": self.cluster_arn, "AWS::EC2::SecurityGroup": group}[kind]
            if "Fn::GetStackOutput" in value:
                output = value["Fn::GetStackOutput"]["OutputName"]
                if "AlertsTopic" in output:
                    return self.topic_arn
                if "Subnet" in output:
                    return subnets[0] if "Subnet1" in output else subnets[1]
                if "Secret" in output:
                    return secret_arn
            if "Ref" in value and resources.get(value["Ref"], {}).get("Type") == "AWS::Logs::LogGroup":
                return "migration-logs"
            raise AssertionError(f"cannot resolve {value!r} for the local runbook")

        task_definition = next(
            r["Properties"] for r in resources.values() if r["Type"] == "AWS::ECS::TaskDefinition"
        )
        self.client("ecs").register_task_definition(
            family=task_definition["Family"],
            networkMode=task_definition["NetworkMode"],
            requiresCompatibilities=task_definition["RequiresCompatibilities"],
            cpu=task_definition["Cpu"],
            memory=task_definition["Memory"],
            containerDefinitions=[
                {
                    "name": c["Name"],
                    "image": "runner:local",
                    "essential": True,
                    "memory": c.get("Memory", 512),
                    # The label ops checks before a migration (ops/image_check.py): the configured release.
                    "dockerLabels": {
                        k: v for k, v in c.get("DockerLabels", {}).items() if isinstance(v, str)
                    },
                }
                for c in task_definition["ContainerDefinitions"]
            ],
        )
        machine = next(
            r["Properties"] for r in resources.values() if r["Type"] == "AWS::StepFunctions::StateMachine"
        )
        definition = resolve(machine["DefinitionString"])
        self.state_machine_arn = self.client("stepfunctions").create_state_machine(
            name=machine["StateMachineName"], definition=definition, roleArn=role["Role"]["Arn"]
        )["stateMachineArn"]
        self._create_evidence_bucket(json.loads(definition))

    def _create_evidence_bucket(self, definition: dict[str, Any]) -> None:
        """The bucket the definition writes to, with Object Lock and a default retention as in AWS
        (moto then requires an integrity checksum on PUT, as S3 does)."""
        buckets = {
            state["Arguments"]["Bucket"]
            for state in definition["States"].values()
            if state.get("Resource", "").endswith(":s3:putObject")
        }
        (self.evidence_bucket,) = buckets
        s3 = self.client("s3")
        s3.create_bucket(Bucket=self.evidence_bucket, ObjectLockEnabledForBucket=True)
        s3.put_object_lock_configuration(
            Bucket=self.evidence_bucket,
            ObjectLockConfiguration={
                "ObjectLockEnabled": "Enabled",
                "Rule": {"DefaultRetention": {"Mode": "GOVERNANCE", "Days": 1}},
            },
        )

    def definition(self) -> dict[str, Any]:
        raw = self.client("stepfunctions").describe_state_machine(stateMachineArn=self.state_machine_arn)
        return dict(json.loads(raw["definition"]))

    # -- the database ----------------------------------------------------------------------------
    def create_instance(self, *, backup_retention_days: int = 14) -> None:
        self.client("rds").create_db_instance(
            DBInstanceIdentifier=self.instance_identifier,
            Engine="postgres",
            DBInstanceClass="db.t4g.large",
            AllocatedStorage=20,
            MasterUsername="rp_admin",
            MasterUserPassword="not-a-real-password-1",
            BackupRetentionPeriod=backup_retention_days,
            CopyTagsToSnapshot=True,
            Tags=[{"Key": "revenuepilot:environment", "Value": self.stage_id.lower()}],
        )

    def snapshots(self) -> list[dict[str, Any]]:
        rds = self.client("rds")
        found = rds.describe_db_snapshots(
            DBInstanceIdentifier=self.instance_identifier, SnapshotType="manual"
        )
        for snapshot in found["DBSnapshots"]:
            snapshot["Tags"] = {
                t["Key"]: t["Value"]
                for t in rds.list_tags_for_resource(ResourceName=snapshot["DBSnapshotArn"])["TagList"]
            }
        return list(found["DBSnapshots"])

    # -- executions ------------------------------------------------------------------------------
    def start(self, execution_input: dict[str, Any] | str, *, name: str | None = None) -> str:
        payload = execution_input if isinstance(execution_input, str) else json.dumps(execution_input)
        response = self.client("stepfunctions").start_execution(
            stateMachineArn=self.state_machine_arn, name=name or f"test-{next(self._names)}", input=payload
        )
        return str(response["executionArn"])

    def status(self, execution_arn: str) -> str:
        return str(self.client("stepfunctions").describe_execution(executionArn=execution_arn)["status"])

    def play_pending(self, player: TaskPlayer) -> None:
        """Hand every task the runbook started and the double has not finished yet to `player`."""
        self.task_runs.extend(self._new_task_runs(self.client("ecs")))  # no API call unless a task started
        for run in self.task_runs:
            if run.task_arn in self._finished_tasks:
                continue
            outcome = player(run)
            if outcome is not None:
                self._finished_tasks.add(run.task_arn)
                self._finish(run, outcome, self.client("stepfunctions"))

    def drive(
        self,
        execution_arn: str,
        player: TaskPlayer,
        *,
        until: Callable[[], bool] | None = None,
        timeout: float = 60.0,
    ) -> dict[str, Any]:
        """Play the runbook's ECS tasks until the execution ends (or `until()` holds); DescribeExecution."""
        stepfunctions = self.client("stepfunctions")
        deadline = time.monotonic() + timeout
        while True:
            self.play_pending(player)
            execution: dict[str, Any] = stepfunctions.describe_execution(executionArn=execution_arn)
            if execution["status"] != "RUNNING" or (until is not None and until()):
                return execution
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"{execution_arn} still running after {timeout} s: {self.states_entered(execution_arn)}"
                )
            time.sleep(0.02)  # each API call costs the interpreter thread CPU (and a uuid4) too

    @contextlib.contextmanager
    def playing_in_background(self, player: TaskPlayer) -> Iterator[None]:
        """The double as a thread, for callers that follow the execution themselves (the ops CLI)."""
        import threading

        stop = threading.Event()
        errors: list[BaseException] = []

        def loop() -> None:
            # Own clients: boto3 clients are not shared across threads here.
            runbook = dataclasses.replace(self, _clients={})
            try:
                while not stop.is_set():
                    runbook.play_pending(player)
                    stop.wait(0.01)
            except BaseException as error:  # surfaced in the test thread
                errors.append(error)

        thread = threading.Thread(target=loop, name="ecs-task-double", daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join(5)
        if errors:
            raise errors[0]

    def _new_task_runs(self, ecs: Any) -> list[TaskRun]:
        arns = [a for a in list(self.recorder.started_tasks) if a not in self._known_tasks]
        if not arns:
            return []
        self._known_tasks.update(arns)
        runs = []
        for task in ecs.describe_tasks(cluster=self.cluster_arn, tasks=arns)["tasks"]:
            if task["clusterArn"] != self.cluster_arn:  # another runbook's (moto finds tasks by ARN alone)
                continue
            override = (task.get("overrides") or {}).get("containerOverrides", [{}])[0]
            runs.append(
                TaskRun(
                    task_arn=task["taskArn"],
                    cluster_arn=task["clusterArn"],
                    command=list(override.get("command", [])),
                    environment={e["name"]: e["value"] for e in override.get("environment", [])},
                )
            )
        return runs

    def _finish(self, run: TaskRun, outcome: TaskOutcome, stepfunctions: Any) -> None:
        from moto.ecs.models import ecs_backends

        backend = ecs_backends[self.account][self.region]
        token = run.environment.get("SFN_TASK_TOKEN")
        if token and outcome.failure is not None:
            stepfunctions.send_task_failure(
                taskToken=token, error=outcome.failure[0], cause=outcome.failure[1]
            )
        elif token and outcome.counts is not None:
            report: dict[str, Any] = {"counts": outcome.counts}
            if outcome.revisions is not None:
                report["revisions"] = outcome.revisions
            stepfunctions.send_task_success(taskToken=token, output=json.dumps(report))
        task = backend.stop_task(run.cluster_arn, run.task_arn, outcome.stopped_reason)
        for container in task.containers:
            container.exitCode = outcome.exit_code
            container.last_status = "STOPPED"

    def run(self, execution_input: dict[str, Any] | str, player: TaskPlayer, **kwargs: Any) -> dict[str, Any]:
        return self.drive(self.start(execution_input, **kwargs), player)

    # -- what happened ---------------------------------------------------------------------------
    def history(self, execution_arn: str) -> list[dict[str, Any]]:
        pages = (
            self.client("stepfunctions")
            .get_paginator("get_execution_history")
            .paginate(executionArn=execution_arn)
        )
        return [event for page in pages for event in page["events"]]

    def states_entered(self, execution_arn: str) -> list[str]:
        return [
            e["stateEnteredEventDetails"]["name"]
            for e in self.history(execution_arn)
            if e["type"].endswith("StateEntered")
        ]

    def evidence(self) -> dict[str, dict[str, Any]]:
        """The evidence records in the bucket, by key (latest version; parsed JSON)."""
        s3 = self.client("s3")
        records = {}
        for item in s3.list_objects_v2(Bucket=self.evidence_bucket).get("Contents", []):
            body = s3.get_object(Bucket=self.evidence_bucket, Key=item["Key"])["Body"].read()
            records[item["Key"]] = json.loads(body)
        return records

    def clear_evidence(self) -> None:
        s3 = self.client("s3")
        for version in s3.list_object_versions(Bucket=self.evidence_bucket).get("Versions", []):
            s3.delete_object(
                Bucket=self.evidence_bucket,
                Key=version["Key"],
                VersionId=version["VersionId"],
                BypassGovernanceRetention=True,
            )

    def parameters(self) -> dict[str, Any]:
        """The SSM parameters (maintenance mode, applied revisions): name -> parsed JSON value."""
        ssm = self.client("ssm")
        found = {}
        for page in ssm.get_paginator("describe_parameters").paginate():
            for parameter in page["Parameters"]:
                value = ssm.get_parameter(Name=parameter["Name"])["Parameter"]["Value"]
                found[parameter["Name"]] = json.loads(value)
        return found

    def notifications(self) -> list[dict[str, Any]]:
        """Messages delivered to the alert topic so far: {"subject", "message" (parsed JSON)}."""
        sqs = self.client("sqs")
        received: list[dict[str, Any]] = []
        while True:
            batch = sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10).get("Messages", [])
            if not batch:
                return received
            for message in batch:
                envelope = json.loads(message["Body"])
                received.append(
                    {"subject": envelope.get("Subject"), "message": json.loads(envelope["Message"])}
                )
                sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"])


@contextlib.contextmanager
def local_runbook(
    template: dict[str, Any], *, stage_id: str, region: str, account: str, instance_identifier: str
) -> Iterator[Runbook]:
    """moto (executing state machines) with the patches, and the runbook deployed into it."""
    from moto import mock_aws

    recorder, rds_controls = SleepRecorder(), RdsControls()
    with (
        mock_aws(config={"stepfunctions": {"execute_state_machine": True}}),
        moto_patches(recorder, rds_controls),
    ):
        runbook = Runbook(
            stage_id=stage_id,
            region=region,
            account=account,
            template=template,
            recorder=recorder,
            rds_controls=rds_controls,
            instance_identifier=instance_identifier,
        )
        runbook.deploy()
        yield runbook
