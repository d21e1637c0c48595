"""Direct MQTT5 telemetry transport (awscrt) for devices without Greengrass: AWS IoT Core with
mutual TLS, or any MQTT5 broker. Loaded lazily by ``edgeinfer.core.telemetry.registry``."""
