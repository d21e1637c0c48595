#!/usr/bin/env python3
"""The edgeinfer fleet's CDK app: ``cdk synth`` / ``cdk deploy`` from this folder, or ``python app.py``.

Context (``cdk.json`` defaults, ``-c key=value`` overrides) names the fleet; see docs/cdk.md. The
AWS Solutions checks of cdk-nag run on every synth and fail it on any unacknowledged finding.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from pathlib import Path
from typing import Any

os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")  # node 20 works; no banner

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from aws_cdk import App, Environment, Validations  # noqa: E402
from cdk_nag import AwsSolutionsChecks  # noqa: E402
from edgeinfer_cdk.config import FleetConfig  # noqa: E402
from edgeinfer_cdk.stack import FleetStack  # noqa: E402

log = logging.getLogger("edgeinfer.cdk")


def cdk_json_context() -> dict[str, Any]:
    """cdk.json's context: the CDK CLI passes it itself; ``python app.py`` needs it read here."""
    return dict(json.loads((HERE / "cdk.json").read_text(encoding="utf-8")).get("context", {}))


def build(context: dict[str, Any] | None = None, outdir: str | None = None) -> tuple[App, FleetStack]:
    """The app with its one stack; ``context`` overrides cdk.json, the CLI's ``-c`` overrides both."""
    app = App(context={**cdk_json_context(), **(context or {})}, outdir=outdir or os.environ.get("CDK_OUTDIR"))
    cfg = FleetConfig.from_context(app.node.try_get_context, dict(os.environ))
    stack = FleetStack(app, f"{cfg.fleet}-fleet", cfg, env=Environment(account=cfg.account, region=cfg.region))
    Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    return app, stack


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    app, stack = build()
    assembly = app.synth()
    log.info("synthesised %s into %s", stack.stack_name, assembly.directory)
    return 0


if __name__ == "__main__":
    sys.exit(main())
