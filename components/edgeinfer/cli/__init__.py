"""`edgeinfer ...`: a thin face over the core and the adapters. Errors print one line and exit non-zero."""

from __future__ import annotations

import sys

import typer

from ..core.errors import EdgeInferError
from .aws import aws_app
from .azure import azure_app
from .common import print_error
from .config_cmd import config_app
from .greengrass import greengrass_app
from .model import model_app
from .run import bench, run

app = typer.Typer(
    name="edgeinfer",
    help="Edge-AI inference for camera and sensor fleets: run models next to the camera, deploy with "
    "Greengrass v2 or IoT Edge.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.command(help="Run a model over a source (no flags: the embedded face-detector demo).")(run)
app.command(help="Bare runtime loop vs the edgeinfer pipeline on the same model and frames.")(bench)
app.add_typer(model_app, name="model", help="Make, inspect, verify and optimise model packages.")
app.add_typer(config_app, name="config", help="The configuration schema, defaults and validation.")
app.add_typer(greengrass_app, name="greengrass", help="Render and validate the Greengrass v2 component recipes.")
app.add_typer(aws_app, name="aws", help="SageMaker registry -> Greengrass components -> deployments (boto3).")
app.add_typer(azure_app, name="azure", help="IoT Edge deployment manifests and IoT Hub deployments.")


@app.command()
def version() -> None:
    """Print the edgeinfer version."""
    from .. import __version__

    typer.echo(__version__)


def main() -> None:
    try:
        app()
    except EdgeInferError as exc:
        print_error(exc)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        sys.exit(130)
