"""Cloud-side tooling: model registries -> Greengrass components / IoT Edge manifests -> deployments."""
