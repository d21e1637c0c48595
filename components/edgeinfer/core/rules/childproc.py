"""Run a local hook program as a contained child process.

* No shell, ever: ``argv`` is a list of strings. ``argv[0]`` is an absolute path, or a bare name (no ``/``)
  looked up on :data:`SAFE_PATH` only; a relative path (``./hook``, ``bin/hook``), an empty name or a
  string argv is refused with a one-line :class:`ConfigError`.
* A scrubbed environment (:func:`child_env`): built from an allow-list, never copied from the parent, so the
  Greengrass IPC token (``SVCUID``), AWS credentials, IoT Edge connection strings and tokens never reach a hook.
* Its own session and process group: on timeout the whole group is killed (``SIGKILL``), and so is anything
  the hook left behind in its group when it exits, so a forked grandchild cannot outlive it. (A grandchild
  that calls ``setsid()`` itself escapes the group; containing that needs a cgroup.)
* Bounded output: at most ``max_output`` bytes of stdout and of stderr are kept; the rest is read and
  discarded, so a hook that prints gigabytes neither blocks on a full pipe nor exhausts memory.
* stdin: the payload, then EOF.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import pwd
import re
import selectors
import shutil
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from ..errors import ConfigError

log = logging.getLogger(__name__)

SAFE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
MAX_OUTPUT_BYTES = 64 * 1024
_CHUNK = 64 * 1024
_PASSED_THROUGH = ("LANG", "LC_ALL", "LC_CTYPE", "TZ")  # copied from the parent when set
_EVENT_NAME = re.compile(r"^EDGEINFER_EVENT_[A-Z0-9_]{1,64}$")
_DENIED_PREFIXES = ("AWS_", "GG_", "IOTEDGE_", "AZURE_")
_DENIED_WORDS = ("SVCUID", "TOKEN", "SECRET", "PASSWORD", "PASSWD", "KEY", "CREDENTIAL", "CONNECTIONSTRING",
                 "SAS")


def is_secret_name(name: str) -> bool:
    """True for an environment variable a hook must never see (cloud runtime identity, credentials, tokens)."""
    upper = name.upper()
    squashed = re.sub(r"[^A-Z0-9]", "", upper)
    return upper.startswith(_DENIED_PREFIXES) or any(w in squashed for w in _DENIED_WORDS)


def _service_home() -> str:
    try:
        return pwd.getpwuid(os.getuid()).pw_dir or "/"
    except KeyError:
        return "/"


def child_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The whole environment of a hook: ``PATH`` = :data:`SAFE_PATH`, ``HOME`` of the service user, the
    parent's ``LANG``/``LC_ALL``/``LC_CTYPE``/``TZ`` if set, plus ``extra``, whose names must be
    ``EDGEINFER_EVENT_*`` (ConfigError otherwise). Nothing else of the parent's environment is passed."""
    env = {"PATH": SAFE_PATH, "HOME": _service_home()}
    env.update({k: os.environ[k] for k in _PASSED_THROUGH if k in os.environ})
    for name, value in (extra or {}).items():
        if not _EVENT_NAME.match(name) or is_secret_name(name):
            raise ConfigError(f"hook environment variable {name!r} is not allowed",
                              "pass only EDGEINFER_EVENT_* names that do not look like credentials")
        if not isinstance(value, str) or "\0" in value:
            raise ConfigError(f"hook environment variable {name} must be a string without NUL bytes")
        env[name] = value
    return env


def resolve_argv(argv: object) -> list[str]:
    """``argv`` checked and with ``argv[0]`` made absolute; ConfigError (one line) when it is refused."""
    if isinstance(argv, (str, bytes)) or not isinstance(argv, Sequence):
        raise ConfigError("a hook's argv must be a list of strings, not a command line",
                          'write it as ["/path/to/program", "arg", ...]; hooks never run through a shell')
    if not argv or not all(isinstance(a, str) for a in argv):
        raise ConfigError("a hook's argv must be a non-empty list of strings")
    if any("\0" in a for a in argv):
        raise ConfigError("a hook's argv must not contain NUL bytes")
    prog = argv[0]
    if not prog.strip():
        raise ConfigError("a hook's program (argv[0]) is empty", "name the program by its absolute path")
    if "/" in prog:
        if not os.path.isabs(prog):
            raise ConfigError(f"a hook's program {prog!r} is a relative path",
                              f"use an absolute path, or a bare name found on {SAFE_PATH}")
        return list(argv)
    found = shutil.which(prog, path=SAFE_PATH)
    if found is None:
        raise ConfigError(f"a hook's program {prog!r} is not on the safe PATH {SAFE_PATH}",
                          "use the program's absolute path")
    return [found, *argv[1:]]


@dataclass(frozen=True, slots=True)
class HookResult:
    returncode: int  # negative: killed by that signal
    stdout: bytes  # at most max_output bytes
    stderr: bytes
    stdout_truncated: bool
    stderr_truncated: bool
    timed_out: bool
    duration_s: float


class _Capped:
    def __init__(self, limit: int) -> None:
        self.data, self.limit, self.truncated = bytearray(), limit, False

    def feed(self, chunk: bytes) -> None:
        room = self.limit - len(self.data)
        if len(chunk) > room:
            self.truncated = True
        if room > 0:
            self.data += chunk[:room]


def _kill_group(pgid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)


def _leader_exited(pid: int) -> bool:
    """True once ``pid`` has exited; does not reap it, so its pid (= the group id) stays reserved."""
    return os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None


def run_hook(argv: Sequence[str], payload: bytes, timeout_s: float, extra_env: Mapping[str, str] | None = None,
             max_output: int = MAX_OUTPUT_BYTES) -> HookResult:
    """Run ``argv`` (see the module doc) with ``payload`` on stdin, for at most ``timeout_s`` seconds.

    Raises ConfigError for a refused argv or environment, OSError when the program cannot be started."""
    cmd, env = resolve_argv(argv), child_env(extra_env)
    t0 = time.monotonic()
    deadline = t0 + timeout_s
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
                            start_new_session=True, close_fds=True)
    assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
    out, err = _Capped(max_output), _Capped(max_output)
    timed_out = False
    sel = selectors.DefaultSelector()
    pidfd = -1
    try:
        for f in (proc.stdin, proc.stdout, proc.stderr):
            os.set_blocking(f.fileno(), False)
        sel.register(proc.stdout, selectors.EVENT_READ, out)
        sel.register(proc.stderr, selectors.EVENT_READ, err)
        pending = memoryview(payload)
        if pending:
            sel.register(proc.stdin, selectors.EVENT_WRITE, None)
        else:
            proc.stdin.close()
        with contextlib.suppress(AttributeError, OSError):
            pidfd = os.pidfd_open(proc.pid)  # readable when the hook exits: no polling needed
            sel.register(pidfd, selectors.EVENT_READ, "exit")
        leader_gone = False
        while True:
            if not leader_gone and _leader_exited(proc.pid):
                leader_gone = True
                _kill_group(proc.pid)  # whatever it left in its group goes with it
                if pidfd >= 0:
                    sel.unregister(pidfd)
            streams_open = any(key.data is not None and key.data != "exit" for key in sel.get_map().values())
            if leader_gone and not streams_open:
                break
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                timed_out = not leader_gone
                _kill_group(proc.pid)
                break
            wait = remaining if pidfd >= 0 else min(remaining, 0.05)
            for key, _ in sel.select(wait):
                if key.data == "exit":
                    continue  # handled at the top of the loop
                if key.data is None:  # stdin
                    try:
                        pending = pending[os.write(key.fd, pending[:_CHUNK]):]
                    except BlockingIOError:
                        continue
                    except BrokenPipeError:
                        pending = pending[:0]  # the hook does not read its stdin: fine
                    if not pending:
                        sel.unregister(key.fileobj)
                        proc.stdin.close()
                    continue
                try:
                    chunk = os.read(key.fd, _CHUNK)
                except BlockingIOError:
                    continue
                except OSError as exc:
                    if exc.errno != errno.EIO:
                        raise
                    chunk = b""
                if chunk:
                    key.data.feed(chunk)
                else:
                    sel.unregister(key.fileobj)
    finally:
        sel.close()
        if pidfd >= 0:
            os.close(pidfd)
        for f in (proc.stdin, proc.stdout, proc.stderr):
            with contextlib.suppress(OSError):
                f.close()
        if proc.poll() is None:
            _kill_group(proc.pid)
        proc.wait()
    return HookResult(proc.returncode, bytes(out.data), bytes(err.data), out.truncated, err.truncated, timed_out,
                      time.monotonic() - t0)
