"""The inference component's runtime artifact: one ZIP per platform holding the edgeinfer wheel and every
dependency wheel for the device's Python, pinned with sha256s, built reproducibly (``edgeinfer greengrass
bundle``) and installed offline by the recipe's Install lifecycle."""

from .build import Bundle, BundleRequest, build_bundles, bundle_extras
from .errors import BundleError
from .manifest import MANIFEST_NAME, REQUIREMENTS_NAME, BundleManifest, read_manifest, runtime_digests
from .targets import Target

__all__ = [
    "MANIFEST_NAME", "REQUIREMENTS_NAME", "Bundle", "BundleError", "BundleManifest", "BundleRequest", "Target",
    "build_bundles", "bundle_extras", "read_manifest", "runtime_digests",
]
