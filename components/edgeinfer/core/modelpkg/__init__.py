"""Model packages: a folder or zip holding model files and ``manifest.yaml``."""

from .manifest import FileEntry, InputSpec, Manifest
from .package import ModelPackage, load_package, sha256_file

__all__ = ["FileEntry", "InputSpec", "Manifest", "ModelPackage", "load_package", "sha256_file"]
