"""`edgeinfer azure manifest|validate|deploy|status`: IoT Edge deployment manifests and IoT Hub deployments."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import BaseModel, ValidationError
from rich.markup import escape

from ..cloud.azure.errors import ManifestError
from ..core.config import one_line
from .common import console, setup_logging

azure_app = typer.Typer(no_args_is_help=True)

SchemasOpt = Annotated[Path | None, typer.Option("--schemas", help="Folder of the SchemaStore azure-iot-edge "
                                                 "schemas (default: $EDGEINFER_SCHEMAS_DIR/azure-iot-edge when set)")]
ModuleOpt = Annotated[str, typer.Option(help="Module name in the deployment")]
ConnOpt = Annotated[str, typer.Option(help="Environment variable holding the IoT Hub connection string")]


def _pairs(items: list[str] | None, what: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ManifestError(f"{what} {item!r} is not KEY=VALUE", f"write --{what} KEY=VALUE")
        out[key] = value
    return out


def _model(cls: type[BaseModel], what: str, **fields: Any) -> Any:
    """``cls(**fields)`` with a one-line ManifestError instead of pydantic's report."""
    try:
        return cls.model_validate(fields)
    except ValidationError as exc:
        raise ManifestError(f"invalid {what}: {one_line(exc)}", "fix the options named") from exc


def _report(path: Path, doc: dict[str, Any], module_name: str, schemas: Path | None) -> None:
    from ..cloud.azure.validate import check_manifest

    report = check_manifest(doc, module_name, schemas)
    for problem in report.problems:
        console.print(f"[red]x[/] {escape(problem)}", soft_wrap=True)
    report.raise_for_problems(f"manifest {path}")
    how = "; ".join(report.checked) if report.schema_dir else (
        report.checked[0] + " (SchemaStore schemas not found: pass --schemas to use them too)")
    console.print(f"[green]ok[/] {escape(str(path))} ({len(json.dumps(doc))} bytes): {escape(how)}", soft_wrap=True)


@azure_app.command()
def manifest(
    out: Annotated[Path, typer.Option(help="Deployment manifest to write (JSON)")],
    config: Annotated[Path | None, typer.Option(help="edgeinfer config (YAML/JSON): the module's desired "
                                                "properties")] = None,
    platform: Annotated[str, typer.Option(help="amd64, arm64v8, amd64.cuda or arm64v8.l4t")] = "amd64",
    registry: Annotated[str | None, typer.Option(help="Container registry, e.g. myacr.azurecr.io")] = None,
    image: Annotated[str | None, typer.Option(help="Full module image (default [registry/]edgeinfer:VERSION-"
                                              "PLATFORM)")] = None,
    registry_username: Annotated[str | None, typer.Option(help="Registry user (adds registryCredentials)")] = None,
    registry_password_env: Annotated[str, typer.Option(help="Variable holding the registry password at deploy "
                                                       "time (only the reference is written)")]
    = "CONTAINER_REGISTRY_PASSWORD",
    module_name: ModuleOpt = "edgeinfer",
    template: Annotated[Path | None, typer.Option(help="Deployment template (default: edgeinfer's)")] = None,
    gpu: Annotated[bool | None, typer.Option("--gpu/--no-gpu", help="Request GPUs (default: GPU platforms)")]
    = None,
    device: Annotated[list[str] | None, typer.Option(help="Host device for the module, e.g. /dev/video0 "
                                                     "(repeat)")] = None,
    env: Annotated[list[str] | None, typer.Option(help="Module environment KEY=VALUE (repeat)")] = None,
    model_name: Annotated[str | None, typer.Option(help="Model to deliver: name")] = None,
    model_version: Annotated[str | None, typer.Option(help="Model to deliver: version")] = None,
    model_uri: Annotated[str | None, typer.Option(help="Model to deliver: https URL of the package")] = None,
    model_sha256: Annotated[str | None, typer.Option(help="Model to deliver: sha256 of the file at the URL")]
    = None,
    aml_registry: Annotated[str | None, typer.Option(help="Azure ML registry to take --model-name from")] = None,
    aml_sas_env: Annotated[str | None, typer.Option(help="Variable holding a read SAS token appended to the "
                                                    "registry model's blob URL")] = None,
    model_package: Annotated[Path | None, typer.Option(help="Model to deliver: the package .zip served at "
                                                       "--model-uri (name, version and sha256 read from it)")] = None,
    force: Annotated[bool, typer.Option(help="Deliver a --model-package its optimize agreement report "
                                        "rejected")] = False,
    captures_blob: Annotated[str | None, typer.Option(help="Captures to blob: add the Azure Blob Storage on IoT "
                                                      "Edge module with this local account name, captures on")]
    = None,
    blob_key_env: Annotated[str, typer.Option(help="Variable holding the local account key at deploy time (only "
                                              "the reference is written)")] = "EDGEINFER_BLOB_KEY",
    blob_cloud_env: Annotated[str, typer.Option(help="Variable holding the storage account connection string the "
                                                "module tiers to, at deploy time")]
    = "EDGEINFER_BLOB_CLOUD_CONNECTION",
    blob_cloud_container: Annotated[str, typer.Option(help="Container in the storage account")]
    = "edgeinfer-captures",
    blob_image: Annotated[str | None, typer.Option(help="Blob module image (default mcr.microsoft.com/"
                                                   "azure-blob-storage:latest)")] = None,
    schemas: SchemasOpt = None,
) -> None:
    """Build a deployment manifest from the template and the config; it is validated before it is written."""
    from ..azure.modelref import ModelRef
    from ..cloud.azure.manifest import ManifestOptions, build_manifest, write_manifest
    from ..core import config as cfgmod

    setup_logging("WARNING")
    model: ModelRef | None = None
    if aml_registry:
        from ..cloud.azure.registry import ml_client, resolve_model

        if not model_name:
            raise ManifestError("--aml-registry needs --model-name", "name the registry model to deliver")
        model = resolve_model(ml_client(aml_registry), model_name, model_version, model_uri, model_sha256,
                              os.environ.get(aml_sas_env) if aml_sas_env else None)
    elif model_package is not None:
        from ..cloud.azure.package_ref import package_ref

        model = package_ref(model_package, model_uri, force, model_name, model_version)
    elif any((model_name, model_version, model_uri, model_sha256)):
        model = _model(ModelRef, "model (--model-name/--model-version/--model-uri/--model-sha256)",
                       name=model_name, version=model_version, uri=model_uri, sha256=model_sha256)
    credentials = ([{"name": (registry or "registry").split(".")[0], "address": registry or "",
                     "username": registry_username, "password_env": registry_password_env}]
                   if registry_username else [])
    blob = None
    if captures_blob is not None:
        blob = {"account_name": captures_blob, "key_env": blob_key_env, "cloud_connection_env": blob_cloud_env,
                "cloud_container": blob_cloud_container, **({"image": blob_image} if blob_image else {})}
    opts = _model(ManifestOptions, "manifest options", module_name=module_name, image=image, registry=registry,
                  platform=platform, gpu=gpu, devices=device or [], env=_pairs(env, "env"), credentials=credentials,
                  template=template, config=cfgmod.load_file(config) if config else {}, model=model, blob=blob)
    doc = build_manifest(opts)
    _report(out, doc, module_name, schemas)
    write_manifest(doc, out)
    if opts.blob is not None:
        from ..cloud.azure.blobmodule import local_store

        console.print(f"captures go to the blob module once the device's local settings say so: captures: {{store: "
                      f"{json.dumps(local_store(opts.blob))}}}; export {opts.blob.key_env} and "
                      f"{opts.blob.cloud_connection_env} before `edgeinfer azure deploy`", soft_wrap=True,
                      markup=False)


@azure_app.command()
def validate(path: Annotated[Path, typer.Argument(help="Deployment manifest (JSON)")],
             module_name: ModuleOpt = "edgeinfer", schemas: SchemasOpt = None) -> None:
    """Validate a manifest: SchemaStore schemas (when found) + edgeinfer's checks; lists every problem."""
    from ..cloud.azure.validate import load_manifest

    _report(path, load_manifest(path), module_name, schemas)


@azure_app.command()
def deploy(
    path: Annotated[Path, typer.Argument(help="Deployment manifest (JSON)")],
    device: Annotated[str | None, typer.Option(help="Apply to this one IoT Edge device")] = None,
    target_condition: Annotated[str | None, typer.Option(help="At-scale deployment to devices matching this "
                                                         "condition, e.g. \"tags.site='lab'\"")] = None,
    priority: Annotated[int, typer.Option(help="At-scale priority (higher wins)")] = 10,
    layered: Annotated[bool, typer.Option(help="Layered deployment: only edgeinfer's module, routes and twin")]
    = False,
    label: Annotated[list[str] | None, typer.Option(help="Deployment label KEY=VALUE (repeat)")] = None,
    prefix: Annotated[str, typer.Option(help="Deployment id prefix")] = "edgeinfer",
    module_name: ModuleOpt = "edgeinfer",
    connection_string_env: ConnOpt = "IOTHUB_CONNECTION_STRING",
    schemas: SchemasOpt = None,
) -> None:
    """Deploy a validated manifest with IoT Hub (registry passwords come from their $VARIABLES now)."""
    from ..cloud.azure.deploy import Target, connect
    from ..cloud.azure.deploy import deploy as run_deploy
    from ..cloud.azure.validate import load_manifest

    setup_logging("WARNING")
    doc = load_manifest(path)
    _report(path, doc, module_name, schemas)
    target = _model(Target, "deployment target", device_id=device, target_condition=target_condition,
                    priority=priority, layered=layered, prefix=prefix, labels=_pairs(label, "label"),
                    module_name=module_name)
    result = run_deploy(connect(connection_string_env), doc, target)
    if result["kind"] == "device":
        console.print(f"[green]applied[/] to device {result['device_id']}")
    elif result["created"]:
        console.print(f"[green]created[/] {result['kind']} deployment [bold]{result['id']}[/]")
    else:
        console.print(f"[yellow]unchanged[/] {result['kind']} deployment {result['id']} exists with this content")


@azure_app.command()
def status(
    deployment: Annotated[str | None, typer.Option(help="At-scale/layered deployment id")] = None,
    device: Annotated[str | None, typer.Option(help="One device")] = None,
    module_name: ModuleOpt = "edgeinfer",
    connection_string_env: ConnOpt = "IOTHUB_CONNECTION_STRING",
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON")] = False,
) -> None:
    """Applied / failed / pending per device (edgeAgent's and the module's reported properties)."""
    from rich.table import Table

    from ..cloud.azure.deploy import connect
    from ..cloud.azure.status import deployment_status, device_status

    setup_logging("WARNING")
    if (deployment is None) == (device is None):
        raise ManifestError("give --deployment ID or --device ID", "name what to show")
    clients = connect(connection_string_env)
    metrics: dict[str, Any] = {}
    if deployment is not None:
        metrics, devices = deployment_status(clients, deployment, module_name)
    else:
        devices = [device_status(clients, str(device), module_name)]
    if as_json:
        typer.echo(json.dumps({"metrics": metrics, "devices": [d.as_dict() for d in devices]}, indent=2))
        return
    if metrics:
        console.print(", ".join(f"{k} {v}" for k, v in sorted(metrics.items())), soft_wrap=True)
    table = Table("device", "state", "model", "reason")
    colour = {"applied": "green", "failed": "red", "pending": "yellow"}
    for d in devices:
        table.add_row(d.device_id, f"[{colour[d.state]}]{d.state}[/]", d.model or "-", d.reason or "")
    console.print(table)
    if any(d.state == "failed" for d in devices):
        raise typer.Exit(1)


rollout_app = typer.Typer(no_args_is_help=True)
azure_app.add_typer(rollout_app, name="rollout", help="Staged rollouts: rings by tags.ring as layered "
                    "deployments, soak, health criteria, abort (docs/rollouts.md).")
PlanArg = Annotated[Path, typer.Argument(help="Rollout plan (YAML/JSON, docs/rollouts.md)")]
ManifestOpt = Annotated[Path | None, typer.Option(help="Deployment manifest whose edgeinfer module each ring's "
                                                  "layer carries (needed to deploy a ring)")]
WatchOpt = Annotated[float, typer.Option(help="Keep advancing for this many seconds (0: one step)")]
PollOpt = Annotated[float, typer.Option(help="Seconds between steps with --watch")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON")]


def _driver(manifest_path: Path | None, connection_string_env: str) -> Any:
    from ..cloud.azure.deploy import connect
    from ..cloud.azure.rollout import IotHubRollout
    from ..cloud.azure.validate import load_manifest

    return IotHubRollout(connect(connection_string_env), load_manifest(manifest_path) if manifest_path else {
        "modulesContent": {}})


def _step(plan: Path, manifest_path: Path | None, start: bool, watch: float, poll: float, as_json: bool,
          connection_string_env: str) -> None:
    from ..cloud.rollout.plan import load_plan
    from .rollout_view import step

    setup_logging("WARNING")
    if manifest_path is None:
        raise ManifestError("--manifest is needed to deploy a ring", "pass the manifest built with "
                            "`edgeinfer azure manifest --model-version <the plan's model_version>`")
    step(_driver(manifest_path, connection_string_env), load_plan(plan), start, watch, poll, as_json)


@rollout_app.command("start")
def rollout_start(plan: PlanArg, manifest: ManifestOpt = None, watch: WatchOpt = 0, poll: PollOpt = 60,
                  as_json: JsonOpt = False, connection_string_env: ConnOpt = "IOTHUB_CONNECTION_STRING") -> None:
    """Create the first ring's layered deployment (nothing when it exists) and show every ring."""
    _step(plan, manifest, True, watch, poll, as_json, connection_string_env)


@rollout_app.command("advance")
def rollout_advance(plan: PlanArg, manifest: ManifestOpt = None, watch: WatchOpt = 0, poll: PollOpt = 60,
                    as_json: JsonOpt = False, connection_string_env: ConnOpt = "IOTHUB_CONNECTION_STRING") -> None:
    """Withdraw a failing ring, or create the next ring's layer after a soaked, healthy one."""
    _step(plan, manifest, False, watch, poll, as_json, connection_string_env)


@rollout_app.command("status")
def rollout_status(plan: PlanArg, devices: Annotated[str | None, typer.Option(help="Also list this ring's devices "
                                                                             "(one page)")] = None,
                   page_token: Annotated[str | None, typer.Option(help="Next page of --devices")] = None,
                   as_json: JsonOpt = False, connection_string_env: ConnOpt = "IOTHUB_CONNECTION_STRING") -> None:
    """Every ring: targeted, succeeded, failed, rolled back, in progress, and why (changes nothing)."""
    from ..cloud.azure.rollout import device_page
    from ..cloud.rollout import engine
    from ..cloud.rollout.plan import load_plan
    from .rollout_view import device_table, show

    setup_logging("WARNING")
    p = load_plan(plan)
    driver = _driver(None, connection_string_env)
    show(engine.status(driver, p), as_json)
    if devices:
        rows, token = device_page(driver.clients, p, p.ring(devices), page_token)
        device_table([(r.device, r.model, r.config_status, r.rollback.reason if r.rollback else None) for r in rows],
                     ("device", "model", "config", "rolled back because"), token)
