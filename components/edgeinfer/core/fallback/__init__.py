"""Cloud fallback: a frame the local model is unsure of (or every frame while the local backend is degraded) goes
to a cloud endpoint, off the frame path, within a budget and behind a circuit breaker.

* ``config.py``: the ``fallback:`` section (the endpoint and its hosts are device-local settings).
* ``band.py``: which frames go (the uncertainty band per label, a degraded backend) and what crop.
* ``guards.py``: the per-minute/per-day budget and the circuit breaker.
* ``formats.py``: request/response codecs (edgeinfer's own JSON by default; entry points add more).
* ``client.py``: the client port; the SageMaker and Azure ML clients live in ``edgeinfer.hybrid`` and are
  found by entry point, so the core never imports a vendor SDK.
* ``service.py``: the worker thread with its bounded queue, the linked ``cloud`` event, the counts.
"""
