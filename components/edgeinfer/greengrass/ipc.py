"""Small helpers around the Greengrass IPC SDK (the unmodified ``GreengrassCoreIPCClientV2``)."""

from __future__ import annotations

import logging
from collections.abc import Callable

from awsiot.eventstreamrpc import LifecycleHandler
from awsiot.greengrasscoreipc import connect
from awsiot.greengrasscoreipc.clientv2 import GreengrassCoreIPCClientV2
from awsiot.greengrasscoreipc.model import InvalidArgumentsError, UnauthorizedError

from .errors import GreengrassError

log = logging.getLogger(__name__)


def error_text(exc: BaseException) -> str:
    """The SDK's error shapes keep their text in ``.message`` (``str()`` is often empty)."""
    message = getattr(exc, "message", None)
    return f"{type(exc).__name__}: {message}" if message else (str(exc) or type(exc).__name__)


def is_refusal(exc: BaseException) -> bool:
    """True for errors that retrying cannot fix (not authorized, invalid arguments)."""
    return isinstance(exc, UnauthorizedError | InvalidArgumentsError)


class _Lifecycle(LifecycleHandler):
    def __init__(self, on_disconnect: Callable[[str | None], None]) -> None:
        self._on_disconnect = on_disconnect

    def on_disconnect(self, reason: Exception | None) -> None:
        self._on_disconnect(None if reason is None else error_text(reason))

    def on_error(self, error: Exception) -> bool:
        log.error("Greengrass IPC connection error: %s", error_text(error))
        return True


def connect_v2(on_disconnect: Callable[[str | None], None], timeout_s: float = 10.0) -> GreengrassCoreIPCClientV2:
    """Connect with the nucleus's socket and token from the environment, watching for disconnects."""
    try:
        client = connect(lifecycle_handler=_Lifecycle(on_disconnect), timeout=timeout_s)
    except KeyError as exc:
        raise GreengrassError(f"environment variable {exc.args[0]} is not set",
                              "run under the Greengrass nucleus (the recipe's Run lifecycle sets it)") from exc
    except Exception as exc:
        raise GreengrassError(f"cannot connect to the Greengrass nucleus: {error_text(exc)}",
                              "check the nucleus is running and this process was started by it") from exc
    return GreengrassCoreIPCClientV2(client=client)
