"""``python -m edgeinfer.azure``: the IoT Edge module entry point (the container's CMD).

Connects with ``IoTHubModuleClient.create_from_edge_environment``, runs until SIGTERM (what edgeAgent
sends to stop a module), then drains telemetry for ``telemetry.drain_timeout_s`` and exits 0.
Environment: the ``IOTEDGE_*`` variables edgeAgent sets; ``EDGEINFER_STATE_DIR`` (outbox, downloaded
models, last good config: mount a volume there), ``EDGEINFER_LOG_LEVEL`` (INFO),
``EDGEINFER_MODEL_MAX_BYTES`` (largest model download, default 2 GiB), ``SSL_CERT_FILE`` (extra CA
for model downloads). The module serves /metrics, /healthz, /readyz and the status page on 127.0.0.1:9464 inside
the container unless the local settings' ``serve:`` says otherwise (docs/observability.md).
"""

from __future__ import annotations

import logging
import os
import sys
import threading

from ..core import redact, remote
from ..core.config import EdgeInferConfig, deep_merge, state_dir, validate
from ..core.errors import EdgeInferError
from ..core.heap import frozen_heap
from ..core.serve.endpoints import ANNOUNCE_FILE, Endpoints
from ..core.session import RunSession
from ..core.signals import StopSignals
from .client import create_module_client, edge_identity
from .model_download import DEFAULT_MAX_BYTES, ModelDownloader
from .runtime import ModuleRuntime
from .transport import ModuleOutputTransport
from .workloadkeys import WorkloadKeys

log = logging.getLogger("edgeinfer.azure")

RETRY_S = (1.0, 2.0, 5.0, 10.0, 30.0)


def main() -> int:
    logging.basicConfig(level=os.environ.get("EDGEINFER_LOG_LEVEL", "INFO").upper(), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    redact.install()  # no secret (URL password, SAS signature, token) in any log line
    logging.getLogger("azure.iot.device").setLevel(logging.WARNING)
    logging.getLogger("paho").setLevel(logging.WARNING)
    stop = threading.Event()
    StopSignals(stop).__enter__()  # for the life of the process: a second signal exits at once
    try:
        device_id, module_id = edge_identity()
        client = create_module_client()
        max_bytes = int(os.environ.get("EDGEINFER_MODEL_MAX_BYTES", DEFAULT_MAX_BYTES))
        local = remote.load_local()  # a settings file that exists but is bad stops the start: never looser rules
    except (EdgeInferError, ValueError) as exc:
        log.error("%s", exc)
        return 2
    root = state_dir()
    downloader = ModelDownloader(root / "azure" / "models", max_bytes, stop=stop, policy=remote.policy_of(local))
    keys = WorkloadKeys.from_environment()  # trust.decryption.iotedge_wrapped_key: unwrapped by the security daemon
    runtime: ModuleRuntime | None = None
    # serve: is local-only: the local settings say it all. /healthz answers from before the first twin on; the
    # image's HEALTHCHECK finds the server through the announcement (modules/edgeinfer/healthcheck.py)
    endpoints = Endpoints(validate(deep_merge(local, {"device_id": device_id}), "local settings").serve,
                          lambda: runtime.service if runtime is not None else None, announce=root / ANNOUNCE_FILE)

    def session(config: EdgeInferConfig, transport: ModuleOutputTransport) -> RunSession:
        made: list[RunSession] = []
        s = RunSession(config, transport=transport, key_source=keys,
                       extra_sinks=endpoints.sinks(lambda: made[0] if made else None))
        made.append(s)
        return s

    runtime = ModuleRuntime(client, device_id, root, downloader, service_factory=session, local=local)
    endpoints.start()
    log.info("edgeinfer module %s on device %s starting (state in %s)", module_id, device_id, root)
    attempt = 0
    while not stop.is_set():
        try:
            runtime.start()
            break
        except Exception as exc:  # edgeHub not up yet, a network blip: the SDK's errors vary, all are retried
            delay = RETRY_S[min(attempt, len(RETRY_S) - 1)]
            attempt += 1
            log.warning("could not start (%s: %s); retrying in %.0fs", type(exc).__name__, exc, delay)
            stop.wait(delay)
    else:
        client.shutdown()
        endpoints.stop()
        return 0
    log.info("running; direct methods: %s", ", ".join(runtime.methods.names))
    with frozen_heap():  # the start-up heap stays out of full collections while the module runs
        while not stop.wait(1.0):  # a timed wait: the main thread runs the SIGTERM handler within a second
            pass
    log.info("stopping")
    runtime.stop()
    endpoints.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
