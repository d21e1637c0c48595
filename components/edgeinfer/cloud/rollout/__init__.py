"""Staged model rollouts, vendor-neutral: the plan (rings, soak, health criteria), each ring's progress and the
decision to wait, promote or abort. ``cloud/aws/rollout*.py`` and ``cloud/azure/rollout*.py`` map it onto
Greengrass deployments with IoT jobs and onto IoT Hub layered deployments."""
