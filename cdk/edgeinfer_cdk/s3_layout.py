"""Where things live in the artifact bucket, as IAM resource patterns, from the tooling's own key functions.

``edgeinfer aws register/publish`` write content-addressed keys (``.../<sha256>/file``); passing ``*``
as the digest turns each key function into the pattern that matches exactly those objects.
"""

from __future__ import annotations

from edgeinfer.cloud.aws.registry import registry_key
from edgeinfer.greengrass.recipes.render import RUNTIME_PREFIX, model_artifact_key


def registry_objects(group: str) -> str:
    """The registry's model.tar.gz files of one model package group."""
    return registry_key(group, "*")


def model_objects(model: str = "*") -> str:
    """Model component ZIPs (of one model, or of every model)."""
    return model_artifact_key(model, "*")


def runtime_objects() -> str:
    """The inference component's runtime wheelhouse ZIPs, every version and platform."""
    return f"{RUNTIME_PREFIX}/*"


def captures_objects() -> str:
    """The data loop's uploads (core/captures/uploader.py: captures/<device>/<YYYY>/<MM>/<DD>/<id>.jpg|.manifest)."""
    return "captures/*"


def device_readable() -> list[str]:
    """What a Greengrass core downloads: component artifacts, never the registry's tarballs."""
    return [model_objects(), runtime_objects()]
