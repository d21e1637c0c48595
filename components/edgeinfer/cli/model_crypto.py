"""`edgeinfer model encrypt`: AES-256-GCM over a package's model file (registered on `edgeinfer model`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from ..core.errors import ModelError
from .common import console, setup_logging


def encrypt(
    path: Annotated[Path, typer.Argument(help="Package folder or .zip (encrypted in place unless --out)")],
    key: Annotated[Path | None, typer.Option(help="Key file (32 bytes, mode 0600) to encrypt with")] = None,
    new_key: Annotated[Path | None, typer.Option("--new-key", help="Write a fresh random key to this new file "
                                                 "(mode 0600) and encrypt with it")] = None,
    out: Annotated[Path | None, typer.Option(help="Write the encrypted package here instead (a folder, or a .zip "
                                             "for a .zip)")] = None,
) -> None:
    """Encrypt the model file of a package (AES-256-GCM, bound to its name, version and file name).

    Encrypt first, then sign (`edgeinfer model sign`): the signature covers the manifest, which lists the
    ciphertext's sha256. The key goes to devices through their local settings (trust.decryption), never
    inside the package."""
    from ..core.modelpkg.crypto import encrypt_package
    from ..core.modelpkg.keys import read_key_file, write_key_file

    setup_logging("WARNING")
    if (key is None) == (new_key is None):
        raise ModelError("give exactly one of --key and --new-key", "--key KEYFILE to reuse a key, --new-key "
                         "KEYFILE to make one")
    secret = read_key_file(key, "--key") if key is not None else write_key_file(new_key)  # type: ignore[arg-type]
    if new_key is not None:
        console.print(f"new key [bold]{escape(str(new_key))}[/] (mode 0600): keep it secret, give it to devices "
                      "through trust.decryption", soft_wrap=True)
    done = encrypt_package(path, secret, out)
    console.print(f"encrypted: [bold]{escape(str(done.path))}[/] (aes-256-gcm, key id {done.key_id})", soft_wrap=True)
    if done.dropped_signature:
        console.print("[yellow]the old signature no longer matches and was removed: sign the package again[/] "
                      f"(edgeinfer model sign {escape(str(done.path))} --key SIGNING_KEY)", soft_wrap=True)
