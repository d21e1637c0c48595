"""`edgeinfer aws register|approve|publish|deploy|status`: SageMaker registry -> Greengrass -> devices.

Credentials and region come from the usual AWS sources (``--profile``/``--region`` override). The
clients are built by a factory, so tests build this app around moto and the Greengrass fake.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from .. import __version__
from ..cloud.aws.clients import AwsClients
from ..core.config import load_file
from ..core.modelpkg.signing import Signer
from ..core.plugins import install_hint
from .common import console, setup_logging, status_progress

ClientsFactory = Callable[[str | None, str | None], AwsClients]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON")]


def boto3_clients(region: str | None, profile: str | None) -> AwsClients:
    try:
        import boto3
    except ImportError as exc:
        from ..core.errors import EdgeInferError

        raise EdgeInferError("the AWS commands need boto3", install_hint("boto3")) from exc
    return AwsClients.from_session(boto3.Session(region_name=region, profile_name=profile))


SignKeyOpt = Annotated[Path | None, typer.Option(help="Sign the package with this private key (PEM from "
                                                   "`edgeinfer model keygen`)")]
KmsKeyOpt = Annotated[str | None, typer.Option(help="Sign the package with this AWS KMS key (id, ARN or alias; "
                                               "ECC_NIST_P256, SIGN_VERIFY)")]


def package_signer(clients: Callable[[], AwsClients], sign_key: Path | None, kms_key: str | None) -> Signer | None:
    """The signer --sign-key or --kms-key names (not both), or None."""
    if sign_key is not None and kms_key is not None:
        raise typer.BadParameter("give --sign-key or --kms-key, not both", param_hint="--kms-key")
    if sign_key is not None:
        from ..core.modelpkg.signing import LocalSigner, load_private_key

        return LocalSigner(load_private_key(sign_key))
    if kms_key is not None:
        from ..cloud.aws.kms import KmsSigner

        return KmsSigner(clients().kms, kms_key)
    return None


def _ledger_lines(created: list[str], reused: list[str]) -> None:
    for c in created:
        console.print(f"  [green]created[/] {escape(c)}", soft_wrap=True)
    for r in reused:
        console.print(f"  [dim]reused[/]  {escape(r)}", soft_wrap=True)


def build_aws_app(factory: ClientsFactory = boto3_clients) -> typer.Typer:
    app = typer.Typer(no_args_is_help=True)

    @app.callback()
    def main(ctx: typer.Context,
             region: Annotated[str | None, typer.Option(help="AWS region (default: your AWS config)")] = None,
             profile: Annotated[str | None, typer.Option(help="AWS profile")] = None) -> None:
        """SageMaker Model Registry -> Greengrass components -> deployments."""
        setup_logging("WARNING")
        ctx.obj = (region, profile)

    def clients(ctx: typer.Context) -> AwsClients:
        return factory(*ctx.obj)

    @app.command()
    def register(ctx: typer.Context,
                 package: Annotated[Path, typer.Argument(help="Model package folder or .zip (edgeinfer model import)")],
                 group: Annotated[str, typer.Option(help="Model package group (created if missing)")],
                 bucket: Annotated[str, typer.Option(help="S3 bucket for the artifact")],
                 approval: Annotated[str, typer.Option(help="PendingManualApproval, Approved or Rejected")]
                 = "PendingManualApproval",
                 image: Annotated[str | None, typer.Option(help="Inference image URI, if your account requires "
                                                           "one in model packages (devices ignore it)")] = None,
                 sign_key: SignKeyOpt = None, kms_key: KmsKeyOpt = None,
                 force: Annotated[bool, typer.Option(help="Register a package its optimize agreement report "
                                                     "rejected")] = False,
                 ) -> None:
        """Upload a model package (content-addressed model.tar.gz) and create a registry version. A package
        `edgeinfer model optimize` rejected is refused unless --force."""
        from ..cloud.aws.ledger import Ledger
        from ..cloud.aws.registry import register as do_register

        ledger = Ledger()
        signer = package_signer(lambda: clients(ctx), sign_key, kms_key)
        entry = do_register(clients(ctx), package, group, bucket, approval, image=image, ledger=ledger, signer=signer,
                            force=force)
        signed = f", signed by key {signer.key_id[:16]}…" if signer is not None else ""
        console.print(f"[green]registered[/] {group} v{entry.version} ({entry.status}{signed})", soft_wrap=True)
        _ledger_lines(ledger.created, ledger.reused)

    @app.command()
    def approve(ctx: typer.Context, group: Annotated[str, typer.Option(help="Model package group")],
                version: Annotated[int, typer.Option(help="Registry version to approve")],
                status: Annotated[str, typer.Option(help="Approved, Rejected or PendingManualApproval")] = "Approved",
                ) -> None:
        """Set a registry version's approval status."""
        from ..cloud.aws.registry import approve as do_approve

        entry = do_approve(clients(ctx), group, version, status)
        console.print(f"{group} v{entry.version}: {entry.status}")

    @app.command()
    def publish(ctx: typer.Context, group: Annotated[str, typer.Option(help="Model package group")],
                bucket: Annotated[str, typer.Option(help="S3 bucket for component artifacts")],
                version: Annotated[int | None, typer.Option(help="Registry version (default: newest Approved)")]
                = None,
                inference_version: Annotated[str, typer.Option(help="Inference component version")] = __version__,
                runtime_dir: Annotated[Path | None, typer.Option(help="Folder with the runtime bundles "
                                                                 "(edgeinfer greengrass bundle) to upload, "
                                                                 "content-addressed, for a new inference "
                                                                 "version")] = None,
                model_only: Annotated[bool, typer.Option(help="Create the model component only")] = False,
                platform: Annotated[list[str] | None, typer.Option(help="Only these platforms in a new inference "
                                                                   "version (repeat; default all)")] = None,
                sign_key: SignKeyOpt = None, kms_key: KmsKeyOpt = None,
                ) -> None:
        """Registry version -> model component (and, when needed, the inference component). With --sign-key or
        --kms-key the model component's package is signed as published (its version is the component's)."""
        from ..cloud.aws.publish import publish as do_publish
        from ..greengrass.recipes.platforms import select

        signer = package_signer(lambda: clients(ctx), sign_key, kms_key)
        with console.status("publishing") as status:
            out = do_publish(clients(ctx), group, bucket, version, inference_version, not model_only, runtime_dir,
                             select(platform), progress=status_progress(status), signer=signer)
        console.print(f"[green]published[/] {group} v{out.registry.version} as {out.model_component} "
                      f"{out.model_version}" + (f"; {out.inference_component} {out.inference_version}"
                                                if out.inference_component else "")
                      + (f" (signed by key {out.signed_by[:16]}…)" if out.signed_by else " (unsigned)"),
                      soft_wrap=True)
        _ledger_lines(out.ledger.created, out.ledger.reused)

    @app.command("export-key")
    def export_key(ctx: typer.Context,
                   kms_key: Annotated[str, typer.Option(help="KMS key (id, ARN or alias) that signs packages")],
                   out: Annotated[Path, typer.Option(help="PEM file to write: list it in the device's trust.keys")],
                   ) -> None:
        """Write a KMS signing key's public key as PEM, for devices' trust.keys and `model verify --trust`."""
        from ..cloud.aws.kms import export_public_key

        path, kid = export_public_key(clients(ctx).kms, kms_key, out)
        console.print(f"public key of {escape(kms_key)} written to [bold]{escape(str(path))}[/] (key id {kid})",
                      soft_wrap=True, highlight=False)

    @app.command()
    def deploy(ctx: typer.Context, target: Annotated[str, typer.Argument(help="Thing group or thing name")],
               group: Annotated[str, typer.Option(help="Model package group (the model component to deploy)")],
               model_version: Annotated[str | None, typer.Option(help="Model component version (default: newest)")]
               = None,
               inference_version: Annotated[str | None, typer.Option(help="Inference component version "
                                                                     "(default: newest)")] = None,
               config: Annotated[Path | None, typer.Option(help="YAML/JSON configuration to merge (validated "
                                                           "against the schema first)")] = None,
               kind: Annotated[str, typer.Option(help="auto, thinggroup or thing")] = "auto",
               wait: Annotated[float, typer.Option(help="Seconds to show progress (0: do not wait)")] = 600,
               rollback: Annotated[bool, typer.Option("--rollback/--no-rollback", help="Roll failed devices back "
                                                      "to their previous components (--no-rollback: leave them "
                                                      "as they are)")] = True,
               ) -> None:
        """Deploy to a thing group or thing, starting from its current deployment; show progress."""
        from ..cloud.aws import deploy as dep
        from ..cloud.aws.progress import watch

        if kind not in ("auto", "thinggroup", "thing"):
            raise typer.BadParameter("use auto, thinggroup or thing", param_hint="--kind")
        c = clients(ctx)
        merge = load_file(config) if config else None
        planned = dep.plan(c, target, group, model_version, inference_version, merge, kind)  # type: ignore[arg-type]
        plan = dep.create(c, planned, rollback=rollback)
        console.print(f"[green]deployment[/] {plan.deployment_id} -> {plan.target.kind} {plan.target.name}")
        for name, spec in sorted(plan.components.items()):
            console.print(f"  {name} {spec['componentVersion']}", soft_wrap=True)
        for name, paths in plan.resets.items():
            console.print(f"  reset to new defaults in {name}: {', '.join(paths)}", soft_wrap=True)
        if plan.removed:
            console.print(f"  removed: {', '.join(plan.removed)}")
        if wait > 0:
            def show(states: list) -> None:
                console.print("  " + ", ".join(f"{d.device}: {d.status}" for d in states) if states
                              else "  no core devices in the target yet")

            final = watch(c, plan.target, plan.deployment_id or "", wait, on_change=show)
            bad = [d for d in final if d.done and d.status not in ("SUCCEEDED", "COMPLETED")]
            for d in bad:
                console.print(f"  [red]{escape(d.device)}: {d.status}[/] {escape(d.reason or '')}", soft_wrap=True)
            if bad:
                raise typer.Exit(1)

    @app.command()
    def status(ctx: typer.Context, target: Annotated[str, typer.Argument(help="Thing group or thing name")],
               kind: Annotated[str, typer.Option(help="auto, thinggroup or thing")] = "auto") -> None:
        """Per device: health, edgeinfer component versions and states, latest deployment."""
        from ..cloud.aws.progress import device_status
        from ..cloud.aws.targets import resolve

        c = clients(ctx)
        rows = device_status(c, resolve(c, target, kind))  # type: ignore[arg-type]
        t = Table(title=f"{target}: {len(rows)} core device(s)")
        for col in ("device", "health", "platform", "model", "inference", "latest deployment"):
            t.add_column(col)
        for r in rows:
            t.add_row(r.device, r.health, r.platform, r.model or "-", r.inference or "-", r.deployment or "-")
        console.print(t)

    app.add_typer(_rollout_app(clients), name="rollout", help="Staged rollouts: rings of thing groups, soak, "
                  "health criteria, abort (docs/rollouts.md).")
    return app


PlanArg = Annotated[Path, typer.Argument(help="Rollout plan (YAML/JSON, docs/rollouts.md)")]
NamespaceOpt = Annotated[str, typer.Option(help="CloudWatch namespace of the devices' rollback metric (the CDK "
                                           "stack's edgeinfer/<fleet>)")]
WatchOpt = Annotated[float, typer.Option(help="Keep advancing for this many seconds (0: one step)")]
PollOpt = Annotated[float, typer.Option(help="Seconds between steps with --watch")]


def _rollout_app(clients: Callable[[typer.Context], AwsClients]) -> typer.Typer:
    rollout = typer.Typer(no_args_is_help=True)

    def driver(ctx: typer.Context, namespace: str) -> Any:
        from ..cloud.aws.rollbacks import CloudWatchRollbacks
        from ..cloud.aws.rollout import GreengrassRollout

        c = clients(ctx)
        return GreengrassRollout(c, CloudWatchRollbacks(c.cloudwatch, namespace))

    @rollout.command("start")
    def start(ctx: typer.Context, plan: PlanArg, metrics_namespace: NamespaceOpt = "edgeinfer/edgeinfer",
              watch: WatchOpt = 0, poll: PollOpt = 60, as_json: JsonOpt = False) -> None:
        """Deploy the plan's first ring (nothing when it is deployed already) and show every ring."""
        from ..cloud.rollout.plan import load_plan
        from .rollout_view import step

        step(driver(ctx, metrics_namespace), load_plan(plan), True, watch, poll, as_json)

    @rollout.command("advance")
    def advance(ctx: typer.Context, plan: PlanArg, metrics_namespace: NamespaceOpt = "edgeinfer/edgeinfer",
                watch: WatchOpt = 0, poll: PollOpt = 60, as_json: JsonOpt = False) -> None:
        """Abort a failing ring, or deploy the next ring after a soaked, healthy one (schedule it, or --watch)."""
        from ..cloud.rollout.plan import load_plan
        from .rollout_view import step

        step(driver(ctx, metrics_namespace), load_plan(plan), False, watch, poll, as_json)

    @rollout.command("status")
    def status(ctx: typer.Context, plan: PlanArg, metrics_namespace: NamespaceOpt = "edgeinfer/edgeinfer",
               devices: Annotated[str | None, typer.Option(help="Also list this ring's devices (one page)")] = None,
               page_token: Annotated[str | None, typer.Option(help="Next page of --devices")] = None,
               as_json: JsonOpt = False) -> None:
        """Every ring: targeted, succeeded, failed, rolled back, in progress, and why (changes nothing)."""
        from ..cloud.aws.rollout import device_page
        from ..cloud.rollout import engine
        from ..cloud.rollout.plan import load_plan
        from .rollout_view import device_table, show

        p = load_plan(plan)
        show(engine.status(driver(ctx, metrics_namespace), p), as_json)
        if devices:
            rows, token = device_page(clients(ctx), p, p.ring(devices), page_token)
            device_table([(r.device, r.status, r.reason) for r in rows], ("device", "job execution", "reason"), token)

    return rollout


aws_app = build_aws_app()
