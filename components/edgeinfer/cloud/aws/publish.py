"""``edgeinfer aws publish``: the newest Approved registry version (or a given one) -> Greengrass.

1. find the registry version (Approved), download its tar.gz, check its sha256;
2. repackage: verify the package, version it ``N.0.0``, sign it (a key file or KMS, when given: the
   signature covers the version devices compare), ZIP it (reproducibly);
3. upload the ZIP under a content-addressed key; create ``com.edgeinfer.Model.<group>`` N.0.0;
4. when needed, create the inference component version that depends on it (rendered from the one
   template). With ``--runtime-dir`` its runtime bundles (``edgeinfer greengrass bundle``) are checked
   (platform, edgeinfer version) and uploaded under content-addressed keys
   (``edgeinfer/runtime/<sha256>/edgeinfer-runtime-<platform>.zip``) that the recipe names. "Needed" = that
   version does not exist yet; if it exists it must already accept this model, else the error says to bump it.
A failure reports what was created before it (content-addressed uploads are safe to keep and reuse).
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ... import __version__
from ...core.modelpkg.signing import Signer
from ...greengrass import INFERENCE_COMPONENT, model_component_name
from ...greengrass.bundle import runtime_digests
from ...greengrass.recipes import InferenceOptions, model_artifact_key, render_inference, render_model
from ...greengrass.recipes.platforms import PLATFORMS, Platform
from ...greengrass.recipes.semver import VersionRange
from .clients import AwsClients
from .components import component_arn, create_component, get_recipe, upload_runtime
from .errors import ComponentError, RegistryError
from .ledger import Ledger, reported
from .registry import RegistryPackage, find
from .repackage import repackage
from .s3store import download, put_immutable

log = logging.getLogger(__name__)


@dataclass
class Published:
    registry: RegistryPackage
    model_component: str
    model_version: str
    inference_component: str | None
    inference_version: str | None
    ledger: Ledger = field(default_factory=Ledger)
    signed_by: str | None = None  # the key id that signed the model component's package


def _check_existing_inference(recipe: dict, model_component: str, model_version: str) -> None:
    deps = recipe.get("ComponentDependencies") or {}
    name, version = recipe["ComponentName"], recipe["ComponentVersion"]
    if model_component not in deps:
        others = [d for d in deps if d.startswith("com.edgeinfer.Model.")]
        raise ComponentError(f"{name} {version} already exists and depends on {others or 'no model component'}, "
                             f"not {model_component}", "publish with a new --inference-version for this model")
    rng = deps[model_component].get("VersionRequirement", "*")
    if not VersionRange.parse(str(rng)).admits(model_version):
        raise ComponentError(f"{name} {version} accepts {model_component} {rng}, not {model_version}",
                             "publish with a new --inference-version (and --model-range)")


def publish(clients: AwsClients, group: str, bucket: str, version: int | None = None,
            inference_version: str = __version__, inference: bool = True, runtime_dir: Path | None = None,
            platforms: tuple[Platform, ...] = PLATFORMS, model_range: str = ">=1.0.0",
            inference_name: str = INFERENCE_COMPONENT, progress: Callable[[str], None] = lambda _: None,
            signer: Signer | None = None) -> Published:
    ledger = Ledger()
    entry = find(clients, group, version)
    if not entry.data_url:
        raise RegistryError(f"registry entry {group} v{entry.version} has no artifact (no ModelDataUrl)",
                            "register the model with its artifact: edgeinfer aws register")
    account = clients.account()
    with tempfile.TemporaryDirectory(prefix="edgeinfer-publish-") as tmp, reported(ledger, "publish"):
        work = Path(tmp)
        progress(f"downloading {group} v{entry.version} from {entry.data_url}")
        tarball = download(clients.s3, entry.data_url, work / "model.tar.gz")
        zip_path, info = repackage(tarball, entry, work, signer)
        stored = put_immutable(clients.s3, bucket, model_artifact_key(group, info.zip_sha256), zip_path)
        (ledger.add if stored.created else ledger.reuse)(f"artifact {stored.uri}")
        mrecipe = render_model(group, info.version, bucket, info)
        create_component(clients, mrecipe, ledger, account)
        result = Published(entry, mrecipe["ComponentName"], info.version, None, None, ledger,
                           signer.key_id if signer is not None else None)
        if not inference:
            return result
        arn = component_arn(clients.region, account, inference_name, inference_version)
        existing = get_recipe(clients, arn)
        if existing is not None:
            _check_existing_inference(existing, model_component_name(group), info.version)
            ledger.reuse(f"component {inference_name} {inference_version}")
        else:
            digests = runtime_digests(runtime_dir, platforms, __version__) if runtime_dir is not None else {}
            irecipe = render_inference(InferenceOptions(version=inference_version, bucket=bucket, model=group,
                                                        model_range=model_range, component_name=inference_name,
                                                        package_version=__version__, runtime_sha256=digests),
                                       platforms)
            if runtime_dir is not None:
                upload_runtime(clients, irecipe, runtime_dir, ledger, progress)
            create_component(clients, irecipe, ledger, account)
        result.inference_component, result.inference_version = inference_name, inference_version
        return result
