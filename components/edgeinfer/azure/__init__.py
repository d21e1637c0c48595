"""Azure IoT Edge adapter: the module entry point (``python -m edgeinfer.azure``) over the shared core.

The module twin's desired properties are the core config; reported properties say what runs; direct
methods reload/snapshot/getStats/setThreshold; telemetry leaves through module outputs ``telemetry``
and ``alerts`` behind the core's outbox. Nothing here is imported by ``edgeinfer.core``.
"""
