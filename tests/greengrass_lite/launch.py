"""Start a component as Greengrass Lite's systemd unit would, without systemd.

Lite's ggipcd accepts a CONNECT carrying ``{"componentName": NAME}`` only from a process whose cgroup is
the unit ``ggl.NAME.service`` (it asks libsystemd, which reads /proc/PID/cgroup); it answers with an
``svcuid`` header, the token the component then connects with. So this launcher creates that cgroup, moves
itself into it and then either

* ``--run VERSION``: execs Lite's own ``recipe-runner -n NAME -v VERSION -p run`` (what the unit's ExecStart
  is): it connects as NAME, sets SVCUID, AWS_IOT_THING_NAME, AWS_REGION, ... reads the recipe from
  ``<rootPath>/packages/recipes``, substitutes its variables and execs the run script; or
* ``--svcuid``: connects as NAME itself and prints the svcuid (a test that acts as the component's deployer).

    python -m tests.greengrass_lite.launch --component NAME --bin DIR (--run VERSION | --svcuid)

The IPC socket comes from AWS_GG_NUCLEUS_DOMAIN_SOCKET_FILEPATH_FOR_COMPONENT.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import sys
from pathlib import Path

from tests.greengrass.fake_nucleus.wire import CONNECTION_ACCEPTED, Decoder, MessageType, rpc_message

SOCKET_ENV = "AWS_GG_NUCLEUS_DOMAIN_SOCKET_FILEPATH_FOR_COMPONENT"
CGROUP_ROOTS = ("/sys/fs/cgroup/unified", "/sys/fs/cgroup/systemd", "/sys/fs/cgroup")


def cgroup_hierarchies() -> list[Path]:
    """Where libsystemd looks for the unit: the cgroup v2 tree (unified or hybrid) and the named systemd v1 one."""
    out = []
    for root in map(Path, CGROUP_ROOTS):
        if (root / "cgroup.procs").exists() and root not in out:
            out.append(root)
    return out


def join_unit(component: str) -> list[Path]:
    """Move this process into ``ggl.<component>.service`` in every hierarchy; the cgroups joined."""
    joined = []
    for root in cgroup_hierarchies():
        group = root / f"ggl.{component}.service"
        group.mkdir(exist_ok=True)
        (group / "cgroup.procs").write_text(str(os.getpid()))
        joined.append(group)
    if not joined:
        raise SystemExit("no writable cgroup hierarchy: Lite's component authentication cannot be satisfied")
    return joined


def svcuid(component: str, path: str, timeout_s: float = 10.0) -> str:
    """CONNECT as ``component`` (authenticated by this process's cgroup); the svcuid Lite answers with."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(timeout_s)
        s.connect(path)
        s.sendall(rpc_message(MessageType.CONNECT, 0, payload=json.dumps({"componentName": component}).encode(),
                              **{":version": "0.1.0"}))
        decoder = Decoder()
        while True:
            data = s.recv(65536)
            if not data:
                raise SystemExit(f"ggipcd closed the connection: it did not accept {component} from this cgroup")
            for msg in decoder.feed(data):
                if msg.message_type is MessageType.CONNECT_ACK and msg.flags & CONNECTION_ACCEPTED:
                    return str(msg.headers["svcuid"])
                raise SystemExit(f"ggipcd refused the connection: {msg.headers} {msg.payload!r}")


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--component", required=True)
    ap.add_argument("--bin", required=True, help="Lite's bin folder (recipe-runner)")
    what = ap.add_mutually_exclusive_group(required=True)
    what.add_argument("--run", metavar="VERSION")
    what.add_argument("--svcuid", action="store_true")
    args = ap.parse_args(argv)
    join_unit(args.component)
    if args.svcuid:
        print(svcuid(args.component, os.environ[SOCKET_ENV]), flush=True)
        return 0
    runner = os.path.join(args.bin, "recipe-runner")
    os.execv(runner, [runner, "-n", args.component, "-v", args.run, "-p", "run"])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
