"""Greengrass component versions: created from checked recipes, never silently replaced.

A component version is immutable in Greengrass. Creating one that exists with the SAME recipe is a
no-op (publishing twice is safe); with a different recipe it is an error telling to bump the
version. Artifacts named by a recipe must be in S3 first (Greengrass reads them to record digests).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml
from botocore.exceptions import ClientError

from ...core.modelpkg import sha256_file
from ...greengrass.recipes import check_recipe, to_yaml
from ...greengrass.recipes.platforms import PLATFORMS, runtime_artifact_name
from ...greengrass.recipes.render import SHA256
from .clients import AwsClients
from .errors import ArtifactError, ComponentError, client_error, is_not_found
from .ledger import Ledger
from .s3store import head, parse_s3_uri, put_immutable

log = logging.getLogger(__name__)


def component_arn(region: str, account: str, name: str, version: str) -> str:
    return f"arn:aws:greengrass:{region}:{account}:components:{name}:versions:{version}"


def get_recipe(clients: AwsClients, arn: str) -> dict[str, Any] | None:
    """The recipe of an existing component version, or None when it does not exist."""
    try:
        got = clients.greengrass.get_component(arn=arn, recipeOutputFormat="YAML")
    except ClientError as exc:
        if is_not_found(exc):
            return None
        raise
    return yaml.safe_load(got["recipe"])


def _comparable(recipe: dict[str, Any]) -> dict[str, Any]:
    """A recipe without the fields Greengrass fills in (artifact digests, component type)."""
    out = {k: v for k, v in recipe.items() if k != "ComponentType"}
    out["Manifests"] = [{**m, "Artifacts": [{k: v for k, v in a.items() if k not in ("Digest", "Algorithm")}
                                            for a in m.get("Artifacts", [])]} for m in recipe.get("Manifests", [])]
    return out


def missing_artifacts(clients: AwsClients, recipe: dict[str, Any]) -> list[str]:
    uris = sorted({a["URI"] for m in recipe.get("Manifests", []) for a in m.get("Artifacts", [])})
    return [u for u in uris if head(clients.s3, *parse_s3_uri(u)) is None]


def create_component(clients: AwsClients, recipe: dict[str, Any], ledger: Ledger, account: str) -> str:
    """Create the component version (or reuse an identical one); returns its ARN."""
    check_recipe(recipe)
    name, version = recipe["ComponentName"], recipe["ComponentVersion"]
    arn = component_arn(clients.region, account, name, version)
    existing = get_recipe(clients, arn)
    if existing is not None:
        if _comparable(existing) != _comparable(recipe):
            raise ComponentError(f"{name} {version} already exists with a different recipe",
                                 "component versions are immutable: publish with a new version")
        ledger.reuse(f"component {name} {version}")
        return arn
    if missing := missing_artifacts(clients, recipe):
        raise ComponentError(f"{name} {version}: artifact(s) not in S3: {', '.join(missing)}",
                             "upload them first (edgeinfer aws publish --runtime-dir DIR does it for the runtime)")
    try:
        made = clients.greengrass.create_component_version(inlineRecipe=to_yaml(recipe).encode())
    except ClientError as exc:
        code, msg = client_error(exc)
        raise ComponentError(f"Greengrass refused {name} {version}: {code}: {msg}",
                             "fix the recipe (edgeinfer greengrass validate) and publish again") from exc
    status = (made.get("status") or {}).get("componentState")
    if status == "FAILED":
        raise ComponentError(f"{name} {version} was created but FAILED: {made['status'].get('message')}",
                             "delete it (aws greengrassv2 delete-component) and fix the cause")
    ledger.add(f"component {name} {version}")
    return str(made["arn"])


def upload_runtime(clients: AwsClients, recipe: dict[str, Any], runtime_dir: Path, ledger: Ledger,
                   progress: Callable[[str], None] = lambda _: None) -> None:
    """Upload the runtime bundle ZIPs the inference recipe names, each to its immutable key. A content-addressed
    key (``.../<sha256>/<file>``) must name the local file's sha256: a bundle rebuilt since rendering is refused."""
    wanted = {a["URI"] for m in recipe["Manifests"] for a in m.get("Artifacts", [])}
    names = {runtime_artifact_name(p) for p in PLATFORMS}
    for uri in sorted(wanted):
        address, filename = uri.rsplit("/", 2)[-2:]
        local = runtime_dir / filename
        if filename not in names:
            continue
        if not local.is_file():
            raise ComponentError(f"{local} is missing (the recipe names {uri})",
                                 "build the runtime bundle for every platform rendered, or limit --platform")
        if SHA256.fullmatch(address) and sha256_file(local) != address:
            raise ArtifactError(f"{local} is not the bundle the recipe was rendered from (sha256 {address[:12]}…)",
                                "render (or publish) again from the bundles as they are now")
        progress(f"uploading {filename} ({local.stat().st_size / 1e6:.1f} MB)")
        stored = put_immutable(clients.s3, *parse_s3_uri(uri), local)
        (ledger.add if stored.created else ledger.reuse)(f"artifact {stored.uri}")
