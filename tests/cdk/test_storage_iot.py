"""Buckets, IoT policies and the token exchange role of the synthesised fleet, statement by statement."""

from __future__ import annotations

import pytest

from .cfn import Synth, allow, normalise
from .conftest import require_cdk

require_cdk()

IOT = "arn:aws:iot:REGION:ACCOUNT"
THING = "${iot:Connection.Thing.ThingName}"
CORE = "edgeinfer-*"  # default core_thing_prefix "edgeinfer-" + wildcard
BUCKETS = ("Storage/AccessLogs", "Storage/Artifacts", "Storage/Telemetry")
OWN_TOPICS = ("result", "cloud", "health", "summary", "alert", "cmd/reply", "snapshot")


@pytest.mark.parametrize("path", BUCKETS)
def test_every_bucket_is_encrypted_private_tls_only_and_retained(synth: Synth, path: str) -> None:
    bucket = synth.resource(path)
    props = synth.text(bucket["Properties"])
    assert bucket["DeletionPolicy"] == "Retain"
    assert props["BucketEncryption"]["ServerSideEncryptionConfiguration"] == [
        {"ServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]
    assert props["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True, "BlockPublicPolicy": True, "IgnorePublicAcls": True, "RestrictPublicBuckets": True}
    assert props["OwnershipControls"] == {"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]}
    policy = synth.props(f"{path}/Policy")["PolicyDocument"]["Statement"]
    assert {"Action": "s3:*", "Condition": {"Bool": {"aws:SecureTransport": "false"}}, "Effect": "Deny",
            "Principal": {"AWS": "*"}, "Resource": [f"<{path}.Arn>", f"<{path}.Arn>/*"]} in policy


def test_artifact_bucket_is_versioned_and_logged(synth: Synth) -> None:
    props = synth.props("Storage/Artifacts")
    assert props["VersioningConfiguration"] == {"Status": "Enabled"}
    assert props["LoggingConfiguration"] == {"DestinationBucketName": "<Storage/AccessLogs>",
                                             "LogFilePrefix": "artifacts/"}
    assert synth.props("Storage/Telemetry")["LoggingConfiguration"]["DestinationBucketName"] == "<Storage/AccessLogs>"
    rules = {r["Id"]: r for r in props["LifecycleConfiguration"]["Rules"]}
    assert rules["expire-noncurrent"]["NoncurrentVersionExpiration"] == {"NoncurrentDays": 90}
    assert "ExpirationInDays" not in rules["expire-noncurrent"]  # current artifacts never expire


def test_access_logs_bucket_accepts_only_each_buckets_own_log_delivery(synth: Synth) -> None:
    policy = synth.props("Storage/AccessLogs/Policy")["PolicyDocument"]["Statement"]
    assert [s for s in policy if s["Effect"] == "Allow"] == [
        {"Action": "s3:PutObject", "Effect": "Allow", "Principal": {"Service": "logging.s3.amazonaws.com"},
         "Condition": {"ArnLike": {"aws:SourceArn": f"<Storage/{name}.Arn>"},
                       "StringEquals": {"aws:SourceAccount": "ACCOUNT"}},
         "Resource": f"<Storage/AccessLogs.Arn>/{name.lower()}/*"} for name in ("Artifacts", "Telemetry")]


def test_thing_group_and_role_alias(synth: Synth) -> None:
    assert synth.props("Iot/ThingGroup")["ThingGroupName"] == "edgeinfer-fleet"
    alias = synth.props("Iot/TokenExchangeRoleAlias")
    assert alias == {"RoleAlias": "edgeinfer-token-exchange", "RoleArn": "<Iot/TokenExchangeRole.Arn>",
                     "CredentialDurationSeconds": 3600}


def test_token_exchange_role_reads_component_artifacts_and_writes_captures_only(synth: Synth) -> None:
    trust = synth.trust("Iot/TokenExchangeRole")
    assert trust == [{"Action": "sts:AssumeRole", "Effect": "Allow",
                      "Principal": {"Service": "credentials.iot.amazonaws.com"}}]
    assert synth.statements("Iot/TokenExchangeRole") == [
        allow("ReadComponentArtifacts", ["s3:GetObject"], ["<Storage/Artifacts.Arn>/edgeinfer/models/*/*/model.zip",
                                                            "<Storage/Artifacts.Arn>/edgeinfer/runtime/*"]),
        allow("WriteCaptures", ["s3:PutObject"], ["<Storage/Artifacts.Arn>/captures/*"])]


def test_device_policy_binds_a_directly_connected_device_to_its_own_thing(synth: Synth) -> None:
    props = synth.props("Iot/DevicePolicy")
    assert props["PolicyName"] == "edgeinfer-device"
    own = f"edgeinfer/{THING}"
    assert [normalise(s) for s in props["PolicyDocument"]["Statement"]] == [
        allow("ConnectAsOwnThing", ["iot:Connect"], [f"{IOT}:client/{THING}"],
              {"Bool": {"iot:Connection.Thing.IsAttached": "true"}}),
        allow("PublishOwnTopics", ["iot:Publish"], [f"{IOT}:topic/{own}/{t}" for t in OWN_TOPICS]),
        allow("SubscribeOwnCommands", ["iot:Subscribe"], [f"{IOT}:topicfilter/{own}/cmd"]),
        allow("ReceiveOwnCommands", ["iot:Receive"], [f"{IOT}:topic/{own}/cmd"]),
    ]


def test_core_policy_is_the_greengrass_minimum_plus_edgeinfer_topics(synth: Synth) -> None:
    props = synth.props("Iot/CorePolicy")
    assert props["PolicyName"] == "edgeinfer-greengrass-core"
    things, own = f"$aws/things/{CORE}", f"edgeinfer/{CORE}"
    assert [normalise(s) for s in props["PolicyDocument"]["Statement"]] == [
        allow("ConnectAsFleetCore", ["iot:Connect"], [f"{IOT}:client/{CORE}"]),
        allow("PublishNucleusAndEdgeinfer", ["iot:Publish"], [
            f"{IOT}:topic/{things}/greengrass/health/json", f"{IOT}:topic/{things}/greengrassv2/health/json",
            f"{IOT}:topic/{things}/jobs/*", f"{IOT}:topic/{things}/shadow/*",
            *[f"{IOT}:topic/{own}/{t}" for t in OWN_TOPICS]]),
        allow("SubscribeNucleusAndCommands", ["iot:Subscribe"], [
            f"{IOT}:topicfilter/{things}/jobs/*", f"{IOT}:topicfilter/{things}/shadow/*",
            f"{IOT}:topicfilter/{own}/cmd"]),
        allow("ReceiveNucleusAndCommands", ["iot:Receive"], [
            f"{IOT}:topic/{things}/jobs/*", f"{IOT}:topic/{things}/shadow/*", f"{IOT}:topic/{own}/cmd"]),
        allow("TokenExchange", ["iot:AssumeRoleWithCertificate"], ["<Iot/TokenExchangeRoleAlias.RoleAliasArn>"]),
        allow("GreengrassDataPlane", ["greengrass:GetComponentVersionArtifact", "greengrass:GetDeploymentConfiguration",
                                      "greengrass:ListThingGroupsForCoreDevice",
                                      "greengrass:ResolveComponentCandidates"], ["*"]),
    ]


def test_no_other_iot_policy_or_role_alias(synth: Synth) -> None:
    assert synth.of_type("AWS::IoT::Policy") == ["Iot/CorePolicy", "Iot/DevicePolicy"]
    assert synth.of_type("AWS::IoT::RoleAlias") == ["Iot/TokenExchangeRoleAlias"]

