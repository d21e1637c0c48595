"""Cloud side of IoT Edge: deployment manifests from the template and the config schema, their validation,
models from the Azure ML registry, and deployments to IoT Hub (azure-iot-hub)."""
