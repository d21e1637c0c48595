"""Remote documents (a Greengrass deployment's configuration, the IoT Edge twin's desired properties, a reload
command's path) checked against the schema's scope markers (core/scope.py) and the local ``remote:`` lists.

``resolve(remote_doc, base_doc)``: ``base_doc`` is what the device's local operator and the adapter set (the
local settings file, the device id, the recipe's model); ``remote_doc`` is what the cloud sent. The remote
document may not change a local-only key and may set a ``checked:`` key only within ``remote:``; otherwise
the whole document is refused with one line naming the first key (ConfigError) and nothing changes.
The checks here are on the configuration; what resolves to a refused address at run time is caught again
where the connection is made (core/netguard.py).
"""

from __future__ import annotations

import ipaddress
import os
import re
import types
import typing
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from pydantic import BaseModel

from . import config as cfgmod
from .config import EdgeInferConfig, deep_merge
from .errors import ConfigError
from .netguard import address_refused, host_allowed
from .remoteconfig import RemotePolicy
from .scope import scope_of

LOCAL_CONFIG_ENV = "EDGEINFER_LOCAL_CONFIG"
DEFAULT_LOCAL_CONFIG = "/etc/edgeinfer/local.yaml"
_CAMERA_DEVICE = re.compile(r"^/dev/video\d{1,3}$")

Checker = Callable[[Any, RemotePolicy], "str | None"]


# -- the local settings file ----------------------------------------------------------------------
def local_settings_path() -> Path:
    return Path(os.environ.get(LOCAL_CONFIG_ENV) or DEFAULT_LOCAL_CONFIG).expanduser()


def load_local(path: Path | None = None) -> dict[str, Any]:
    """The local operator's settings as a document (``{}`` when the file does not exist). A file that exists but
    cannot be read or is invalid raises ConfigError: the device never falls back to looser settings than the
    operator wrote (fail closed)."""
    p = path or local_settings_path()
    try:
        mode = p.stat().st_mode
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise ConfigError(f"cannot read the local settings {p}: {exc.strerror or exc}",
                          f"fix {p} or remove it") from exc
    if mode & 0o002:  # anyone on the device could grant a deployment anything
        raise ConfigError(f"the local settings {p} can be written by any user (mode {mode & 0o777:04o})",
                          f"chmod o-w {p} (root:root 0644 is usual)")
    doc = cfgmod.load_file(p)
    cfgmod.validate(doc, f"local settings {p}")
    return doc


def policy_of(local: dict[str, Any]) -> RemotePolicy:
    """The ``remote:`` allow-lists the local settings set (the defaults where they set none)."""
    return RemotePolicy.model_validate(local.get("remote") or {})


# -- checks of remote values ----------------------------------------------------------------------
def _under(path: str, dirs: list[str]) -> bool:
    """``path`` (symlinks resolved) lies inside one of ``dirs`` (symlinks resolved)."""
    try:
        real = Path(os.path.realpath(Path(path).expanduser()))
    except (OSError, ValueError):
        return False
    for d in dirs:
        root = Path(os.path.realpath(Path(d).expanduser()))
        if real == root or root in real.parents:
            return True
    return False


def _literal_refused(host: str) -> bool:
    """A host written as a refused address (a name is resolved and checked where the connection is made)."""
    try:
        return address_refused(ipaddress.ip_address(host.strip("[]")))
    except ValueError:
        return False


def _host_problem(host: str | None, patterns: list[str], key: str) -> str | None:
    if not host:
        return "names no host"
    if _literal_refused(host):
        return f"blocked: {host} is a link-local or metadata address"
    if not host_allowed(host, patterns):
        return f"blocked: {host} is not in {key}"
    return None


def check_model_path(value: Any, policy: RemotePolicy) -> str | None:
    if not isinstance(value, str):
        return None  # the schema says what is wrong with it
    if value.startswith("zoo:"):
        return None  # a name in the built-in catalogue, fetched from its fixed address
    if not _under(value, policy.model_dirs):
        return f"{value} is outside remote.model_dirs"
    return None


def check_source(value: Any, policy: RemotePolicy) -> str | None:
    if value is None or isinstance(value, int) or not isinstance(value, str):
        return None
    v = value.strip()
    if v.isdigit() or v.startswith("synthetic:") or _CAMERA_DEVICE.match(v):
        return None
    if v.startswith("gst:"):
        return "GStreamer pipelines are local only (a pipeline can write files)"
    parts = urlsplit(v)
    if parts.scheme in ("rtsp", "rtsps", "http", "https"):
        return _host_problem(parts.hostname, policy.source_hosts, "remote.source_hosts")
    if parts.scheme and len(parts.scheme) > 1:
        return f"{parts.scheme}: sources are local only"
    if not _under(v, policy.source_dirs):
        return f"{v} is outside remote.source_dirs"
    return None


def check_transport(value: Any, policy: RemotePolicy) -> str | None:
    if not isinstance(value, str) or value in ("none", "stdout"):
        return None
    if value.startswith("file:"):
        return "file: transports are local only"
    parts = urlsplit(value)
    if parts.scheme in ("mqtt", "mqtts"):
        if parts.query:
            return "certificate and key files of an mqtts:// transport are local only"
        return _host_problem(parts.hostname, policy.telemetry_hosts, "remote.telemetry_hosts")
    return None  # unknown transports are refused when the transport is opened


def check_webhook(value: Any, policy: RemotePolicy) -> str | None:
    if not isinstance(value, str):
        return None
    return _host_problem(urlsplit(value).hostname, policy.webhook_hosts, "remote.webhook_hosts")


def check_model_uri(value: Any, policy: RemotePolicy) -> str | None:
    if not isinstance(value, str):
        return None
    parts = urlsplit(value)
    if parts.scheme != "https" and not (parts.scheme == "http" and policy.model_http):
        return "https only (remote.model_http allows http://)"
    return _host_problem(parts.hostname, policy.model_hosts, "remote.model_hosts")


CHECKERS: dict[str, Checker] = {"model_path": check_model_path, "source": check_source,
                                "transport": check_transport, "webhook": check_webhook,
                                "model_uri": check_model_uri}


# -- walking a remote document along the schema ---------------------------------------------------
def _models(annotation: Any) -> list[type[BaseModel]]:
    """The pydantic models an annotation can hold (through Optional, unions and Annotated)."""
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _models(typing.get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType):
        return [m for arg in typing.get_args(annotation) for m in _models(arg)]
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return []


def _model_for(annotation: Any, item: Any) -> type[BaseModel] | None:
    """The model a dict ``item`` is validated as; a tagged union is picked by its ``type``."""
    candidates = _models(annotation)
    if len(candidates) == 1:
        return candidates[0]
    tag = item.get("type") if isinstance(item, dict) else None
    return next((m for m in candidates if "type" in m.model_fields and m.model_fields["type"].default == tag), None)


def _set(doc: Any) -> Any:
    """``doc`` without its null leaves (in a merge patch, null and absent both mean "the default")."""
    return {k: _set(v) for k, v in doc.items() if v is not None} if isinstance(doc, dict) else doc


def _changes(base: Any, value: Any) -> bool:
    """Whether merging ``value`` over ``base`` (merge-patch rules) changes it."""
    if isinstance(value, dict) and isinstance(base, dict):
        return _set(deep_merge(base, value)) != _set(base)
    return value != base


def _walk(model: type[BaseModel], doc: Any, base: Any, path: tuple[str | int, ...],
          policy: RemotePolicy) -> Iterator[str]:
    if not isinstance(doc, dict):
        return  # not an object: the schema rejects it with its own message
    for key, value in doc.items():
        info = model.model_fields.get(key)
        if info is None:
            continue  # an unknown key: the schema rejects it
        where = ".".join(str(p) for p in (*path, key))
        kind = scope_of(info.json_schema_extra)
        here = base.get(key) if isinstance(base, dict) else None
        if kind == "local":
            if _changes(here, value):
                yield f"{where} is a local setting: a deployment cannot change it"
            continue
        if kind.startswith("checked:"):
            if value is not None and (problem := CHECKERS[kind.split(":", 1)[1]](value, policy)):
                yield f"{where}: {problem}"
            continue
        origin = typing.get_origin(info.annotation)
        if origin is list or (isinstance(value, list) and origin in (typing.Union, types.UnionType)):
            args = typing.get_args(info.annotation)
            item_ann = typing.get_args(args[0])[0] if origin is not list and args else (args[0] if args else None)
            for i, item in enumerate(value if isinstance(value, list) else []):
                if (sub := _model_for(item_ann, item)) is not None:
                    yield from _walk(sub, item, None, (*path, key, i), policy)
        elif (sub := _model_for(info.annotation, value)) is not None:
            yield from _walk(sub, value, here, (*path, key), policy)


def remote_problems(remote_doc: dict[str, Any], base: EdgeInferConfig) -> list[str]:
    """Every reason ``remote_doc`` may not be applied over ``base`` (empty: it may)."""
    return list(_walk(EdgeInferConfig, remote_doc, base.model_dump(mode="json"), (), base.remote))


def refuse(problems: list[str], what: str) -> ConfigError:
    more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
    return ConfigError(f"{what} refused: {problems[0]}{more}",
                       "a deployment may set only what the device's local settings ($EDGEINFER_LOCAL_CONFIG, "
                       "default /etc/edgeinfer/local.yaml) allow: see docs/security.md")


def resolve(remote_doc: dict[str, Any], base_doc: dict[str, Any], what: str = "remote configuration"
            ) -> EdgeInferConfig:
    """The config ``remote_doc`` means on this device: ``base_doc`` (local settings, adapter values) merged under it.
    Raises ConfigError, changing nothing, when it tries what only the local operator may do or is invalid."""
    base = cfgmod.validate(base_doc, "local settings")
    if problems := remote_problems(remote_doc, base):
        raise refuse(problems, what)
    return cfgmod.validate(deep_merge(base_doc, remote_doc), what)


def check_reload_path(path: str | None, policy: RemotePolicy) -> None:
    """A reload command's/method's ``path`` (remote input): refused with ConfigError outside ``remote.model_dirs``."""
    if path is not None and (problem := check_model_path(path, policy)):
        raise refuse([f"path: {problem}"], "reload")

