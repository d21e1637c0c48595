"""Device-side cloud clients of the hybrid features, registered by entry point (the core imports none of them):

* ``sagemaker``: the fallback's SageMaker real-time endpoint client (boto3 sagemaker-runtime InvokeEndpoint);
* ``azureml``: the fallback's Azure ML online endpoint client (plain HTTPS);
* ``s3store``: the captures' S3 store (boto3), ``blobstore``: the Azure Blob Storage module store
  (azure-storage-blob);
* ``botoguard`` / ``requestsguard``: make boto3's and the Azure SDK's connections netguard's checked ones.
"""
