"""An in-memory Greengrass v2 control plane behind the project's ``GreengrassV2Api`` interface.

moto has no greengrassv2, so this stands in for it. EVERY request is checked by botocore's own
parameter validation against the real ``greengrassv2`` service model (types, required members,
enums, lengths), and every response against the operation's output shape, so a call that this fake
accepts is one boto3 would send, and what it returns is shaped like the real service's answer.
Errors are botocore ``ClientError``s with the service's error codes.

Behaviour kept from the service: component versions are immutable (ConflictException), artifacts
are read from S3 at creation (digests recorded in the stored recipe; a missing one fails the
version), a deployment needs an existing target and existing component versions, a new deployment
supersedes the target's previous one. Core devices report through ``report`` (the device side).
"""

from __future__ import annotations

import base64
import copy
import datetime as dt
import hashlib
import json
import threading
import uuid
from collections.abc import Callable
from typing import Any

import botocore.session
import yaml
from botocore.exceptions import ClientError, ParamValidationError
from botocore.validate import ParamValidator

from .iot_jobs import IotJobs

_MODEL = botocore.session.get_session().get_service_model("greengrassv2")


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def _error(op: str, code: str, message: str, status: int = 400) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": message}, "ResponseMetadata": {"HTTPStatusCode": status}},
                       op)


def _check(shape: Any, params: dict[str, Any], what: str) -> None:
    report = ParamValidator().validate(params, shape)
    if report.has_errors():
        raise ParamValidationError(report=f"{what}: {report.generate_report()}")


class FakeGreengrassV2:
    def __init__(self, s3: Any, iot: Any, region: str, account: str) -> None:
        self._s3, self._iot, self.region, self.account = s3, iot, region, account
        self.components: dict[str, dict[str, Any]] = {}  # arn -> {recipe, name, version, created, status}
        self.deployments: dict[str, dict[str, Any]] = {}
        self.devices: dict[str, dict[str, Any]] = {}
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.jobs = IotJobs(iot, region, account)  # the IoT job AWS makes for every deployment
        self.clock: Callable[[], dt.datetime] = _now  # a test may set its own (deployment and report times)
        self._lock = threading.RLock()

    # ---- the wire: validate in, dispatch, validate out ---------------------------------------
    def __getattr__(self, method: str) -> Any:
        op_name = "".join(p.capitalize() for p in method.split("_"))
        if op_name not in _MODEL.operation_names:
            raise AttributeError(method)
        impl = getattr(self, f"_op_{method}", None)
        op = _MODEL.operation_model(op_name)

        def call(**params: Any) -> dict[str, Any]:
            _check(op.input_shape, params, f"{op_name} request")
            if impl is None:
                raise NotImplementedError(f"the fake control plane does not implement {op_name}")
            with self._lock:
                self.calls.append((op_name, copy.deepcopy(params)))
                out = impl(**params)
            if op.output_shape is not None:
                _check(op.output_shape, out, f"{op_name} response")
            return out

        return call

    def _arn(self, name: str, version: str | None = None) -> str:
        base = f"arn:aws:greengrass:{self.region}:{self.account}:components:{name}"
        return f"{base}:versions:{version}" if version else base

    # ---- components ---------------------------------------------------------------------------
    def _op_create_component_version(self, inlineRecipe: bytes, **_: Any) -> dict[str, Any]:
        op = "CreateComponentVersion"
        try:
            recipe = yaml.safe_load(inlineRecipe)
        except yaml.YAMLError as exc:
            raise _error(op, "ValidationException", f"The recipe is not valid JSON or YAML: {exc}") from exc
        if len(inlineRecipe) > 16_000:
            raise _error(op, "ValidationException", "The recipe exceeds the maximum size of 16000 bytes")
        name, version = recipe.get("ComponentName"), str(recipe.get("ComponentVersion"))
        if not name or not version:
            raise _error(op, "ValidationException", "ComponentName and ComponentVersion are required")
        arn = self._arn(name, version)
        if arn in self.components:
            raise _error(op, "ConflictException", f"Component {name} version {version} already exists", 409)
        state, message = "DEPLOYABLE", "NONE"
        for m in recipe.get("Manifests", []):
            for a in m.get("Artifacts", []):
                bucket, _, key = a["URI"].removeprefix("s3://").partition("/")
                try:
                    body = self._s3.get_object(Bucket=bucket, Key=key)["Body"].read()
                except ClientError:
                    state, message = "FAILED", f"Failed to get artifact {a['URI']}: access denied or not found"
                    continue
                a["Digest"] = base64.b64encode(hashlib.sha256(body).digest()).decode()
                a["Algorithm"] = "SHA-256"
        recipe.setdefault("ComponentType", "aws.greengrass.generic")
        created = self.clock()
        self.components[arn] = {"recipe": recipe, "name": name, "version": version, "created": created,
                                "status": {"componentState": state, "message": message, "errors": {}}}
        return {"arn": arn, "componentName": name, "componentVersion": version, "creationTimestamp": created,
                "status": self.components[arn]["status"]}

    def _component(self, op: str, arn: str) -> dict[str, Any]:
        if arn not in self.components:
            raise _error(op, "ResourceNotFoundException", f"Component version {arn} not found", 404)
        return self.components[arn]

    def _op_describe_component(self, arn: str) -> dict[str, Any]:
        c = self._component("DescribeComponent", arn)
        return {"arn": arn, "componentName": c["name"], "componentVersion": c["version"],
                "creationTimestamp": c["created"], "publisher": c["recipe"].get("ComponentPublisher", ""),
                "description": c["recipe"].get("ComponentDescription", ""), "status": c["status"], "platforms": [
                    {"attributes": m.get("Platform", {})} for m in c["recipe"].get("Manifests", [])]}

    def _op_get_component(self, arn: str, recipeOutputFormat: str = "JSON") -> dict[str, Any]:
        c = self._component("GetComponent", arn)
        body = yaml.safe_dump(c["recipe"], sort_keys=False) if recipeOutputFormat == "YAML" else \
            json.dumps(c["recipe"], default=str)
        return {"recipeOutputFormat": recipeOutputFormat, "recipe": body.encode(), "tags": {}}

    def _op_list_component_versions(self, arn: str, **_: Any) -> dict[str, Any]:
        versions = [{"componentName": c["name"], "componentVersion": c["version"], "arn": a}
                    for a, c in self.components.items() if a.startswith(arn + ":versions:")]
        if not versions:
            raise _error("ListComponentVersions", "ResourceNotFoundException", f"Component {arn} not found", 404)
        return {"componentVersions": versions}

    # ---- deployments --------------------------------------------------------------------------
    def _target_devices(self, op: str, target_arn: str) -> list[str]:
        name = target_arn.rsplit("/", 1)[-1]
        try:
            if ":thinggroup/" in target_arn:
                self._iot.describe_thing_group(thingGroupName=name)
                return [d for d, v in self.devices.items() if target_arn in v["groups"]]
            self._iot.describe_thing(thingName=name)
            return [name] if name in self.devices else []
        except ClientError as exc:
            raise _error(op, "ResourceNotFoundException", f"Target {target_arn} not found", 404) from exc

    def _op_create_deployment(self, targetArn: str, components: dict[str, Any] | None = None,
                              deploymentName: str | None = None, **rest: Any) -> dict[str, Any]:
        op = "CreateDeployment"
        devices = self._target_devices(op, targetArn)
        for name, spec in (components or {}).items():
            if not name.startswith("aws.greengrass.") and self._arn(name, spec["componentVersion"]) not in \
                    self.components:
                raise _error(op, "ResourceNotFoundException",
                             f"Component {name} version {spec['componentVersion']} not found", 404)
        for d in self.deployments.values():
            if d["targetArn"] == targetArn:
                d["isLatestForTarget"], d["deploymentStatus"] = False, "INACTIVE"
        dep_id, job = str(uuid.uuid4()), f"job-{uuid.uuid4().hex[:12]}"
        self.deployments[dep_id] = {
            "targetArn": targetArn, "revisionId": str(sum(1 for d in self.deployments.values()
                                                           if d["targetArn"] == targetArn) + 1),
            "deploymentId": dep_id, "deploymentName": deploymentName or dep_id, "deploymentStatus": "ACTIVE",
            "iotJobId": job, "iotJobArn": f"arn:aws:iot:{self.region}:{self.account}:job/{job}",
            "components": copy.deepcopy(components or {}), "deploymentPolicies": rest.get("deploymentPolicies", {}),
            "iotJobConfiguration": rest.get("iotJobConfiguration", {}), "creationTimestamp": self.clock(),
            "isLatestForTarget": True, "tags": dict(rest.get("tags") or {})}
        for device in devices:
            self.devices[device]["effective"][dep_id] = {"status": "QUEUED", "reason": None, "modified": self.clock()}
        self.jobs.create(job, targetArn, devices, rest.get("iotJobConfiguration") or {},
                         {"deploymentId": dep_id, "components": components or {}})
        return {"deploymentId": dep_id, "iotJobId": job, "iotJobArn": self.deployments[dep_id]["iotJobArn"]}

    def _op_get_deployment(self, deploymentId: str) -> dict[str, Any]:
        if deploymentId not in self.deployments:
            raise _error("GetDeployment", "ResourceNotFoundException", f"Deployment {deploymentId} not found", 404)
        return copy.deepcopy(self.deployments[deploymentId])

    def _op_cancel_deployment(self, deploymentId: str) -> dict[str, Any]:
        d = self._op_get_deployment(deploymentId)
        if d["deploymentStatus"] != "ACTIVE":
            raise _error("CancelDeployment", "ConflictException", f"Deployment {deploymentId} is "
                         f"{d['deploymentStatus']}, not ACTIVE", 409)
        self.deployments[deploymentId]["deploymentStatus"] = "CANCELED"
        self.jobs.cancel(d["iotJobId"], comment=f"Greengrass deployment {deploymentId} canceled")
        return {"message": f"Deployment {deploymentId} canceled"}

    def _op_tag_resource(self, resourceArn: str, tags: dict[str, str]) -> dict[str, Any]:
        dep_id = resourceArn.rsplit(":", 1)[-1]
        if ":deployments:" not in resourceArn or dep_id not in self.deployments:
            raise _error("TagResource", "ResourceNotFoundException", f"Resource {resourceArn} not found", 404)
        self.deployments[dep_id]["tags"].update(tags)
        return {}

    def _op_list_deployments(self, targetArn: str | None = None, historyFilter: str = "LATEST_ONLY",
                             **_: Any) -> dict[str, Any]:
        keys = ("targetArn", "revisionId", "deploymentId", "deploymentName", "creationTimestamp", "deploymentStatus",
                "isLatestForTarget")
        found = [{k: d[k] for k in keys} for d in self.deployments.values()
                 if (targetArn is None or d["targetArn"] == targetArn)
                 and (historyFilter == "ALL" or d["isLatestForTarget"])]
        return {"deployments": found}

    # ---- core devices (read) ------------------------------------------------------------------
    def _device(self, op: str, thing: str) -> dict[str, Any]:
        if thing not in self.devices:
            raise _error(op, "ResourceNotFoundException", f"Core device {thing} not found", 404)
        return self.devices[thing]

    def _op_list_core_devices(self, thingGroupArn: str | None = None, **_: Any) -> dict[str, Any]:
        return {"coreDevices": [
            {"coreDeviceThingName": t, "status": d["status"], "lastStatusUpdateTimestamp": d["seen"]}
            for t, d in self.devices.items() if thingGroupArn is None or thingGroupArn in d["groups"]]}

    def _op_get_core_device(self, coreDeviceThingName: str) -> dict[str, Any]:
        d = self._device("GetCoreDevice", coreDeviceThingName)
        return {"coreDeviceThingName": coreDeviceThingName, "coreVersion": "2.14.0", "platform": "linux",
                "architecture": "amd64", "status": d["status"], "lastStatusUpdateTimestamp": d["seen"], "tags": {}}

    def _op_list_effective_deployments(self, coreDeviceThingName: str, **_: Any) -> dict[str, Any]:
        d = self._device("ListEffectiveDeployments", coreDeviceThingName)
        out = []
        for dep_id, e in d["effective"].items():
            dep = self.deployments[dep_id]
            item = {"deploymentId": dep_id, "deploymentName": dep["deploymentName"], "iotJobId": dep["iotJobId"],
                    "iotJobArn": dep["iotJobArn"], "targetArn": dep["targetArn"],
                    "coreDeviceExecutionStatus": e["status"], "creationTimestamp": dep["creationTimestamp"],
                    "modifiedTimestamp": e["modified"]}
            if e["reason"]:
                item["reason"] = e["reason"]
                item["statusDetails"] = {"errorStack": [e["reason"]], "errorTypes": ["COMPONENT_ERROR"]}
            out.append(item)
        return {"effectiveDeployments": out}

    def _op_list_installed_components(self, coreDeviceThingName: str, **_: Any) -> dict[str, Any]:
        d = self._device("ListInstalledComponents", coreDeviceThingName)
        return {"installedComponents": [{"componentName": n, "componentVersion": v, "lifecycleState": s,
                                         "isRoot": True, "lastStatusChangeTimestamp": d["seen"]}
                                        for n, (v, s) in d["installed"].items()]}

    # ---- the device side (not an AWS API) ------------------------------------------------------
    def register_core_device(self, thing: str, group_arns: list[str]) -> None:
        with self._lock:
            self.devices[thing] = {"groups": list(group_arns), "status": "HEALTHY", "seen": self.clock(),
                                   "effective": {}, "installed": {}}

    def queued(self, thing: str) -> list[dict[str, Any]]:
        with self._lock:
            return [copy.deepcopy(self.deployments[i]) for i, e in self.devices[thing]["effective"].items()
                    if e["status"] == "QUEUED"]

    def report(self, thing: str, deployment_id: str, status: str, installed: dict[str, tuple[str, str]] | None = None,
               reason: str | None = None) -> None:
        with self._lock:
            d = self.devices[thing]
            d["effective"][deployment_id] = {"status": status, "reason": reason, "modified": self.clock()}
            self.jobs.report(self.deployments[deployment_id]["iotJobId"], thing, status)
            d["seen"] = self.clock()
            if installed is not None:
                d["installed"] = dict(installed)
