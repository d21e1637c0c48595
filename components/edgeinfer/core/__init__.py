"""Vendor-neutral core: model packages, backends, tasks, pipeline, rules, telemetry, config.

Nothing under ``edgeinfer.core`` imports an adapter, a cloud SDK or the CLI.
"""
