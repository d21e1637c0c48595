"""The device's own HTTP endpoints: ``/metrics`` (Prometheus), ``/healthz``, ``/readyz`` and ``/`` (a status page).

One small server in the device process (server.py), reading the run session from outside at request time:
``status()``, ``stats()``, ``snapshot()`` and the telemetry service's counters, plus what the ``Recorder`` sink
(recorder.py) sees frame by frame (latency histograms, the last result's time, detections per interval, the
last alerts). Nothing here is imported by a run without ``serve``: the faces import it when they serve.
The ``serve:`` settings (config.py) are local-only: a deployment or twin cannot open or move a listener.
"""
