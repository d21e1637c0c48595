"""The edgeinfer fleet on AWS as one CDK v2 app: storage, IoT access, telemetry, model rollout.

Importing this package imports nothing from aws_cdk; the constructs live in their own modules and
``rollout_lambda`` (the Lambda's own code, bundled at synth time) never needs CDK at all.
"""
