"""Command hooks as real child processes: no shell, a scrubbed environment, the process group killed on
timeout, bounded output (issue 11, item 3)."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import pytest

from edgeinfer.core.errors import ConfigError
from edgeinfer.core.rules.actions import run_command
from edgeinfer.core.rules.childproc import MAX_OUTPUT_BYTES, SAFE_PATH, child_env, run_hook
from edgeinfer.core.rules.config import HookConfig

SECRETS = {
    "SVCUID": "gg-ipc-token-123",
    "AWS_GG_NUCLEUS_DOMAIN_SOCKET_FILEPATH_FOR_COMPONENT": "/greengrass/v2/ipc.socket",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN": "aws-cred-token-456",
    "AWS_SECRET_ACCESS_KEY": "wJalrXUtnFEMI",
    "AWS_REGION": "eu-west-1",
    "GG_ROOT_CA_PATH": "/greengrass/v2/rootCA.pem",
    "IOTEDGE_WORKLOADURI": "unix:///var/run/iotedge/workload.sock",
    "IOTEDGE_MODULEGENERATIONID": "637",
    "EdgeHubConnectionString": "HostName=h;DeviceId=d;SharedAccessKey=c2VjcmV0",
    "AZURE_CLIENT_SECRET": "azure-secret-789",
    "MY_API_TOKEN": "tok-abc",
    "DB_PASSWORD": "hunter2",
    "SIGNING_KEY": "k3y",
    "UNRELATED_SETTING": "harmless-but-not-allowed",
}


def _set_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("LANG", "C.UTF-8")
    monkeypatch.setenv("TZ", "UTC")
    monkeypatch.setenv("PATH", f"/tmp/attacker-bin:{os.environ.get('PATH', '')}")


def _parse_env(text: str) -> dict[str, str]:
    return dict(line.split("=", 1) for line in text.splitlines() if "=" in line)


def test_a_hook_sees_only_the_allow_listed_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    _set_secrets(monkeypatch)
    res = run_hook(["/usr/bin/env"], b"", 10, {"EDGEINFER_EVENT_RULE": "door"})
    assert res.returncode == 0 and not res.timed_out
    seen = _parse_env(res.stdout.decode())
    assert set(seen) <= {"PATH", "HOME", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "EDGEINFER_EVENT_RULE"}
    assert seen["PATH"] == SAFE_PATH and seen["LANG"] == "C.UTF-8" and seen["TZ"] == "UTC"
    assert seen["EDGEINFER_EVENT_RULE"] == "door" and seen["HOME"].startswith("/")
    for value in SECRETS.values():
        assert value not in res.stdout.decode()


def test_a_rule_command_action_gets_the_scrubbed_environment(tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    _set_secrets(monkeypatch)
    out = tmp_path / "env.txt"
    code = "import os, sys; open(sys.argv[1], 'w').write('\\n'.join(f'{k}={v}' for k, v in os.environ.items()))"
    assert run_command(HookConfig(argv=[sys.executable, "-c", code, str(out)]), b"{}") == (True, "exit 0")
    seen = _parse_env(out.read_text())
    assert not {n for n in seen if n in SECRETS or n.startswith(("AWS_", "IOTEDGE_", "AZURE_", "GG_"))}
    assert "SVCUID" not in seen and seen["PATH"] == SAFE_PATH


@pytest.mark.parametrize("name", ["AWS_REGION", "SVCUID", "EDGEINFER_EVENT_TOKEN", "EDGEINFER_EVENT_API_KEY",
                                  "PYTHONPATH", "LD_PRELOAD", "edgeinfer_event_rule"])
def test_extra_variables_are_limited_to_event_names(name: str) -> None:
    with pytest.raises(ConfigError, match="not allowed") as err:
        child_env({name: "x"})
    assert "\n" not in str(err.value)


def _gone(pid: int) -> bool:
    """True once ``pid`` no longer runs (absent, or a zombie waiting for a reaper that is not us)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return True
    return state in ("Z", "X")


def _wait_gone(pid: int, within_s: float = 5.0) -> bool:
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        if _gone(pid):
            return True
        time.sleep(0.02)  # polling a condition with a deadline
    return _gone(pid)


FORKER = """
import subprocess, sys, time
child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
with open(sys.argv[1], "w") as f:
    f.write(str(child.pid))
if sys.argv[2] == "sleep":
    time.sleep(120)
"""


def test_timeout_kills_the_hook_and_its_grandchild(tmp_path: Path) -> None:
    pidfile = tmp_path / "grandchild.pid"
    t0 = time.monotonic()
    res = run_hook([sys.executable, "-c", FORKER, str(pidfile), "sleep"], b"", 2.0)
    elapsed = time.monotonic() - t0
    assert res.timed_out and res.returncode == -9
    assert elapsed < 8
    grandchild = int(pidfile.read_text())
    assert _wait_gone(grandchild), f"grandchild {grandchild} outlived its hook"


def test_a_grandchild_left_behind_is_killed_when_the_hook_exits(tmp_path: Path) -> None:
    """The grandchild holds the hook's stdout open: without the group kill the run would last the whole
    timeout, and the grandchild would live on."""
    pidfile = tmp_path / "grandchild.pid"
    t0 = time.monotonic()
    res = run_hook([sys.executable, "-c", FORKER, str(pidfile), "exit"], b"", 30.0)
    assert not res.timed_out and res.returncode == 0
    assert time.monotonic() - t0 < 10
    assert _wait_gone(int(pidfile.read_text()))


def test_timeout_through_a_rule_action_reports_one_line(tmp_path: Path) -> None:
    pidfile = tmp_path / "grandchild.pid"
    ok, detail = run_command(HookConfig(argv=[sys.executable, "-c", FORKER, str(pidfile), "sleep"],
                                           timeout_s=1.5), b"{}")
    assert not ok and detail.endswith("timed out after 1.5s and was killed") and "\n" not in detail
    assert _wait_gone(int(pidfile.read_text()))


def _status_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise AssertionError(f"no {field} in /proc/self/status")


def _reset_peak_rss() -> None:
    try:
        Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM (Linux >= 4.0)
    except OSError as exc:
        pytest.skip(f"cannot reset the peak RSS through /proc/self/clear_refs: {exc}")


def test_the_peak_rss_measurement_sees_a_50_mb_allocation() -> None:
    """Control for the next test: the method does detect growth of this size."""
    _reset_peak_rss()
    before = _status_kb("VmRSS")
    blob = bytearray(50 * 1024 * 1024)
    blob[::4096] = b"x" * len(blob[::4096])
    assert _status_kb("VmHWM") - before > 40 * 1024
    del blob


def test_a_hook_printing_200_mb_is_read_with_bounded_memory() -> None:
    size = 200 * 1024 * 1024
    _reset_peak_rss()
    before = _status_kb("VmRSS")
    t0 = time.monotonic()
    res = run_hook(["head", "-c", str(size), "/dev/zero"], b"", 60.0)
    growth_kb = _status_kb("VmHWM") - before
    assert res.returncode == 0 and not res.timed_out, res
    assert len(res.stdout) == MAX_OUTPUT_BYTES and res.stdout_truncated and not res.stderr_truncated
    assert growth_kb < 20 * 1024, f"parent RSS grew {growth_kb} KiB"
    assert time.monotonic() - t0 < 30


def test_stderr_is_capped_too_and_the_failure_line_comes_from_what_was_kept() -> None:
    code = "import sys; sys.stderr.write('first line\\n' + 'e' * 1_000_000 + '\\n'); sys.exit(4)"
    res = run_hook([sys.executable, "-c", code], b"", 20.0, max_output=1000)
    assert res.returncode == 4 and res.stderr_truncated and len(res.stderr) == 1000
    ok, detail = run_command(HookConfig(argv=[sys.executable, "-c", code]), b"{}")
    assert not ok and detail.startswith(f"{sys.executable} exited with 4: ") and len(detail) < 300


def test_a_large_payload_reaches_stdin_and_a_hook_that_ignores_stdin_is_fine(tmp_path: Path) -> None:
    payload = os.urandom(3 * 1024 * 1024)
    out = tmp_path / "in.bin"
    code = "import sys; open(sys.argv[1], 'wb').write(sys.stdin.buffer.read())"
    assert run_hook([sys.executable, "-c", code, str(out)], payload, 20.0).returncode == 0
    assert out.read_bytes() == payload
    res = run_hook(["true"], payload, 20.0)
    assert res.returncode == 0 and not res.timed_out


@pytest.mark.parametrize(("argv", "reason"), [
    ("/usr/bin/env", "must be a list of strings, not a command line"),
    (b"/usr/bin/env", "must be a list of strings, not a command line"),
    ([], "non-empty list"),
    ([""], "argv[0]) is empty"),
    (["   "], "argv[0]) is empty"),
    (["./hook.sh"], "is a relative path"),
    (["bin/hook.sh"], "is a relative path"),
    (["definitely-not-a-program-edgeinfer"], "is not on the safe PATH"),
    (["/bin/echo", 3], "non-empty list of strings"),
])
def test_a_refused_argv_says_why_in_one_line(argv: object, reason: str) -> None:
    with pytest.raises(ConfigError) as err:
        run_hook(argv, b"", 5.0)  # type: ignore[arg-type]
    assert reason in str(err.value) and "\n" not in str(err.value)


def test_a_relative_hook_is_not_run_even_from_its_own_directory(tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    marker = tmp_path / "ran"
    hook = tmp_path / "hook.sh"
    hook.write_text(f"#!/bin/sh\ntouch {marker}\n")
    hook.chmod(0o755)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PATH", f"{tmp_path}:{os.environ.get('PATH', '')}")
    ok, detail = run_command(HookConfig(argv=["./hook.sh"]), b"{}")
    assert not ok and detail.startswith("refused: ") and "relative path" in detail and "\n" not in detail
    ok, detail = run_command(HookConfig(argv=["hook.sh"]), b"{}")  # on the parent's PATH, not the safe one
    assert not ok and "not on the safe PATH" in detail
    assert not marker.exists()


def test_arguments_are_never_interpreted_by_a_shell(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    res = run_hook(["echo", "$(touch", f"{marker})", ";", "touch", str(marker)], b"", 5.0)
    assert res.returncode == 0 and res.stdout.decode().strip() == f"$(touch {marker}) ; touch {marker}"
    assert not marker.exists()
