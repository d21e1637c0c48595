"""A fake Greengrass nucleus speaking eventstream-RPC over a Unix socket to the real, unmodified
``GreengrassCoreIPCClientV2`` (see server.py for the protocol, nucleus.py for the behaviour)."""

from .nucleus import FakeNucleus

__all__ = ["FakeNucleus"]
