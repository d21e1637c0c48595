"""pip as a subprocess: it resolves, downloads and builds wheels exactly as the devices' pip will read them.

Its output is streamed: the lines that say what is happening ("Collecting numpy", "Saved ...") go to the
progress callback, everything to the debug log, and on failure the ``ERROR:`` lines become the message.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from collections import deque

from ...core.progress import Progress, no_progress
from .errors import BundleError

log = logging.getLogger(__name__)
SHOWN = ("Collecting", "Downloading", "Saved", "File was already downloaded", "Building wheel", "Processing")


def run_pip(args: list[str], doing: str, fix: str, progress: Progress = no_progress,
            env: dict[str, str] | None = None, python: str = sys.executable) -> None:
    """Run ``python -m pip ARGS``; BundleError naming ``doing``, pip's error and ``fix`` when it fails."""
    cmd = [python, "-m", "pip", *args, "--disable-pip-version-check", "--progress-bar", "off"]
    log.debug("running %s", " ".join(cmd))
    tail: deque[str] = deque(maxlen=60)
    with subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          env={**os.environ, **(env or {})}) as proc:
        assert proc.stdout is not None
        for raw in proc.stdout:
            line = raw.rstrip()
            tail.append(line)
            log.debug("pip: %s", line)
            if line.lstrip().startswith(SHOWN):
                progress(line.strip()[:160])
    if proc.returncode != 0:
        errors = [ln.strip() for ln in tail if ln.lstrip().startswith("ERROR:")]
        reason = " ".join(errors) or (tail[-1].strip() if tail else f"exit code {proc.returncode}")
        raise BundleError(f"{doing} failed: {reason}", fix)
