"""The Greengrass v2 adapter: recipes (render + validation) and the component entry point.

``python -m edgeinfer.greengrass`` is what the recipe's Run lifecycle starts. Importing this package
does not import the Greengrass IPC SDK; only the runtime modules do, so the cloud tooling can render
recipes on a machine without ``awsiotsdk``.
"""

INFERENCE_COMPONENT = "com.edgeinfer.Inference"
MODEL_COMPONENT_PREFIX = "com.edgeinfer.Model."


def model_component_name(model: str) -> str:
    """``com.edgeinfer.Model.<model>``: the artifacts-only component holding one model package."""
    return f"{MODEL_COMPONENT_PREFIX}{model}"
