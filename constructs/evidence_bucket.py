"""The migration evidence bucket: one JSON record per runbook execution, tamper-evident for years.

Creates the evidence bucket and its server access log bucket, both with deterministic names
(`contract.names`: environment, account and region, globally unique), so the Migration stack
names them without a cross-stack export.

Evidence bucket, secure defaults: Object Lock with a default retention (config: COMPLIANCE in
production, where nobody, not even the root user, can delete or shorten it before it expires;
GOVERNANCE in staging), versioning (Object Lock requires it), SSE-KMS with the environment's CMK
and an S3 bucket key, all public access blocked, ACLs disabled (bucket owner enforced), a bucket
policy that refuses any request without TLS, server access logging to the log bucket, RETAIN
(buckets and their policies).
The runbook writes with the bucket's default retention (it sets no retention of its own).

Access log bucket: S3 server access logging delivers only to a target bucket encrypted with SSE-S3
(not SSE-KMS) and without an Object Lock default retention, so that is what it has (Object Lock on,
no default retention); versioning, TLS-only, no public access, RETAIN, and its logs expire after the
evidence's retention. Both buckets send object events to EventBridge.

Exposes `bucket`, `access_log_bucket`.
"""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3

from constructs import Construct
from constructs.checkov import skip_checkov
from constructs.compliance import acknowledge
from contract.compliance import HIPAA_SECURITY, NIST_800_53_R5, PCI_DSS_321
from contract.names import access_log_bucket_name, evidence_bucket_name

_SINGLE_REGION = (
    "Cross-region replication of Object Lock buckets needs its own locked bucket and KMS key in the DR "
    "region; the records are small, written once, and the runbook's notification and execution history "
    "(retained logs) carry their summary. Not replicated by decision (docs/decisions/migration-runbook.md)."
)


class EvidenceBucket(Construct):
    """Object Lock bucket for the runbook's evidence records, and its access log bucket."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        environment_name: str,
        encryption_key: kms.IKey,
        retention_mode: str,
        retention_days: int,
    ) -> None:
        super().__init__(scope, construct_id)
        stack = cdk.Stack.of(self)
        account, region = stack.account, stack.region
        self.access_log_bucket = s3.Bucket(
            self,
            "AccessLogs",
            bucket_name=access_log_bucket_name(environment_name, account, region),
            encryption=s3.BucketEncryption.S3_MANAGED,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            enforce_ssl=True,
            versioned=True,
            # Object Lock without a default retention (a log target may not have one): no object can be
            # locked by accident, but one can be put under legal hold during an investigation.
            object_lock_enabled=True,
            lifecycle_rules=[
                s3.LifecycleRule(
                    id="ExpireAccessLogs",
                    expiration=cdk.Duration.days(retention_days),
                    noncurrent_version_expiration=cdk.Duration.days(30),
                )
            ],
            removal_policy=cdk.RemovalPolicy.RETAIN,
        )
        lock = (
            s3.ObjectLockRetention.compliance
            if retention_mode == "compliance"
            else s3.ObjectLockRetention.governance
        )
        self.bucket = s3.Bucket(
            self,
            "Bucket",
            bucket_name=evidence_bucket_name(environment_name, account, region),
            encryption=s3.BucketEncryption.KMS,
            encryption_key=encryption_key,
            bucket_key_enabled=True,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            enforce_ssl=True,
            versioned=True,
            object_lock_enabled=True,
            object_lock_default_retention=lock(cdk.Duration.days(retention_days)),
            server_access_logs_bucket=self.access_log_bucket,
            server_access_logs_prefix="evidence/",
            # Records are never overwritten (one key per execution); a noncurrent version can only come
            # from a retried write and expires once its lock has. Current records are kept.
            lifecycle_rules=[
                s3.LifecycleRule(
                    id="ExpireNoncurrentVersionsAfterTheirLock",
                    noncurrent_version_expiration=cdk.Duration.days(retention_days + 1),
                    abort_incomplete_multipart_upload_after=cdk.Duration.days(7),
                )
            ],
            removal_policy=cdk.RemovalPolicy.RETAIN,
        )
        for bucket in (self.access_log_bucket, self.bucket):
            # The TLS-only policies stay with their buckets if the stack is ever deleted.
            assert bucket.policy is not None
            bucket.policy.apply_removal_policy(cdk.RemovalPolicy.RETAIN)
            # Object events to EventBridge (native CloudFormation, no notification custom resource): a
            # rule can alert on unexpected writes or deletions.
            cfn_bucket = bucket.node.default_child
            assert isinstance(cfn_bucket, s3.CfnBucket)
            cfn_bucket.notification_configuration = s3.CfnBucket.NotificationConfigurationProperty(
                event_bridge_configuration=s3.CfnBucket.EventBridgeConfigurationProperty(
                    event_bridge_enabled=True
                )
            )
        self._acknowledge()

    def _acknowledge(self) -> None:
        logs = self.access_log_bucket
        acknowledge(
            logs,
            "AwsSolutions-S1",
            "This bucket is the server access log destination; logging it to itself would log its own "
            "deliveries. CloudTrail management events record changes to it.",
        )
        for pack in (HIPAA_SECURITY, NIST_800_53_R5, PCI_DSS_321):
            acknowledge(
                logs,
                f"{pack}-S3BucketLoggingEnabled",
                "This bucket is the server access log destination; logging it to itself would log its "
                "own deliveries. CloudTrail management events record changes to it.",
            )
            acknowledge(
                logs,
                f"{pack}-S3DefaultEncryptionKMS",
                "S3 server access logging delivers only to buckets with SSE-S3 default encryption (SSE-KMS "
                "is not supported for the target); the logs hold request metadata, no record contents.",
            )
        for bucket in (logs, self.bucket):
            for pack in (HIPAA_SECURITY, NIST_800_53_R5, PCI_DSS_321):
                acknowledge(bucket, f"{pack}-S3BucketReplicationEnabled", _SINGLE_REGION)
        skip_checkov(
            logs,
            "CKV_AWS_18",
            "This bucket is the server access log destination; logging it to itself would log its own "
            "deliveries. CloudTrail management events record changes to it.",
        )
