"""The rollout Lambda's own code: a SageMaker approval -> ``edgeinfer aws publish`` + ``rollout start``; a schedule
-> ``rollout advance``.

Bundled at synth time next to the project's ``edgeinfer`` package (never a copy in the repository).
Only relative imports inside this package, so it runs as ``rollout_lambda`` in the Lambda and as
``edgeinfer_cdk.rollout_lambda`` in the tests.
"""
