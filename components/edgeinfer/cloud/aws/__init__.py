"""AWS cloud tooling: SageMaker Model Registry -> S3 (immutable, content-addressed) -> Greengrass v2
components -> deployments. Every client is passed in (``AwsClients``), so tests swap the wire."""
