"""Remote documents against the schema's scope markers and the local ``remote:`` lists (core/remote.py)."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from edgeinfer.core import remote, scope
from edgeinfer.core.config import EdgeInferConfig, defaults_json
from edgeinfer.core.errors import ConfigError


def local_paths(model: type[BaseModel] = EdgeInferConfig, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Every local-only key of the schema (sections included, not their insides)."""
    out = []
    for name, info in model.model_fields.items():
        if scope.scope_of(info.json_schema_extra) == "local":
            out.append((*prefix, name))
        elif isinstance(info.annotation, type) and issubclass(info.annotation, BaseModel):
            out += local_paths(info.annotation, (*prefix, name))
    return out


def nested(path: tuple[str, ...], value: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {path[-1]: value}
    for step in reversed(path[:-1]):
        doc = {step: doc}
    return doc


def other_value(cfg: EdgeInferConfig, path: tuple[str, ...]) -> Any:
    """A valid value at ``path`` different from the one ``cfg`` has."""
    current: Any = cfg.model_dump(mode="json")
    for step in path:
        current = current[step]
    if isinstance(current, dict):
        return {"keys": ["/tmp/k.pub"]} if path == ("trust",) else ({"x": {"argv": ["/bin/true"]}}
                                                                     if path == ("hooks",) else {"model_dirs": ["/"]})
    if isinstance(current, bool):
        return not current
    return "/tmp/elsewhere" if current != "/tmp/elsewhere" else "/tmp/other"


BASE: dict[str, Any] = {"device_id": "cam-1", "hooks": {"light": {"argv": ["/bin/true"]}},
                        "remote": {"webhook_hosts": ["hooks.example.com", "10.1.0.0/16"],
                                   "source_hosts": ["cam.local"], "telemetry_hosts": ["broker.local"]}}


def test_the_schema_marks_what_touches_the_device() -> None:
    marked = {".".join(p) for p in local_paths()}
    for key in ("state_dir", "device_id", "hooks", "remote", "trust", "output.dir", "backend.edgetpu_library",
                "backend.engine_cache_dir", "backend.int8_calibration_table"):
        assert key in marked, key
    schema = EdgeInferConfig.model_json_schema()
    defs = schema["$defs"]
    checked = {name: prop[scope.SCOPE_KEY] for d in (schema, *defs.values())
               for name, prop in d.get("properties", {}).items() if scope.SCOPE_KEY in prop}
    assert {v for v in checked.values() if v.startswith("checked:")} == {
        "checked:model_path", "checked:source", "checked:transport", "checked:webhook"}
    assert set(remote.CHECKERS) == set(scope.CHECKS)  # every marker a check enforces, and no check unmarked


@pytest.mark.parametrize("path", local_paths(), ids=lambda p: ".".join(p))
def test_a_remote_document_cannot_change_any_local_setting(path: tuple[str, ...]) -> None:
    base = EdgeInferConfig.model_validate(BASE)
    with pytest.raises(ConfigError, match=rf"refused: {'.'.join(path)} is a local setting"):
        remote.resolve(nested(path, other_value(base, path)), BASE)
    current: Any = base.model_dump(mode="json")
    for step in path:
        current = current[step]
    remote.resolve(nested(path, copy.deepcopy(current)), BASE)  # the value the device has: no change, accepted
    if current is not None:  # null deletes a key in a merge patch: the local value would be lost
        with pytest.raises(ConfigError, match=rf"refused: {'.'.join(path)} is a local setting"):
            remote.resolve(nested(path, None), BASE)


def test_the_defaults_a_recipe_carries_are_accepted_as_a_remote_document() -> None:
    cfg = remote.resolve(defaults_json(), BASE)
    assert cfg.device_id == "cam-1" and cfg.hooks["light"].argv == ["/bin/true"]


REFUSED = [
    ({"rules": [{"name": "r", "actions": [{"type": "command", "argv": ["sh", "-c", "id"]}]}]}, "name a hook"),
    ({"rules": [{"name": "r", "actions": [{"type": "command", "hook": "shell"}]}]}, "no hook named 'shell'"),
    ({"rules": [{"name": "r", "actions": [{"type": "webhook", "url": "http://10.9.0.5/x"}]}]},
     "rules.0.actions.0.url: blocked: 10.9.0.5 is not in remote.webhook_hosts"),
    ({"rules": [{"name": "r", "actions": [{"type": "alert"}, {"type": "webhook", "url": "http://169.254.169.254/"}]}]},
     "rules.0.actions.1.url: blocked: 169.254.169.254 is a link-local or metadata address"),
    ({"rules": [{"name": "r", "actions": [{"type": "webhook", "url": "http://[fd00:ec2::254]/"}]}]},
     "blocked: fd00:ec2::254 is a link-local or metadata address"),
    ({"telemetry": {"transport": "file:/etc/cron.d/x"}}, "telemetry.transport: file: transports are local only"),
    ({"telemetry": {"transport": "mqtt://evil.example:1883"}},
     "blocked: evil.example is not in remote.telemetry_hosts"),
    ({"telemetry": {"transport": "mqtts://broker.local:8883?key=/etc/shadow"}}, "files of an mqtts:// transport"),
    ({"source": {"uri": "gst:videotestsrc ! filesink location=/tmp/x"}}, "GStreamer pipelines are local only"),
    ({"source": {"uri": "rtsp://10.0.0.9/stream"}}, "blocked: 10.0.0.9 is not in remote.source_hosts"),
    ({"source": {"uri": "/etc"}}, "source.uri: /etc is outside remote.source_dirs"),
    ({"source": {"uri": "v4l2:///dev/video0"}}, "v4l2: sources are local only"),
    ({"model": {"path": "/etc/passwd"}}, "model.path: /etc/passwd is outside remote.model_dirs"),
]


@pytest.mark.parametrize(("doc", "reason"), REFUSED, ids=[r for _, r in REFUSED])
def test_remote_documents_that_reach_past_the_allow_lists_are_refused(doc: dict[str, Any], reason: str) -> None:
    with pytest.raises(ConfigError) as info:
        remote.resolve(doc, BASE, "desired properties version 7")
    assert reason in str(info.value)
    assert "\n" not in str(info.value)


ALLOWED = [
    {"rules": [{"name": "r", "actions": [{"type": "command", "hook": "light"},
                                         {"type": "webhook", "url": "https://hooks.example.com/alarm"},
                                         {"type": "webhook", "url": "http://10.1.4.2:8080/x"}]}]},
    {"telemetry": {"transport": "mqtts://broker.local:8883"}},
    {"telemetry": {"transport": "stdout"}},
    {"source": {"uri": "rtsp://admin:pw@cam.local/stream"}},
    {"source": {"uri": "0"}}, {"source": {"uri": "/dev/video2"}}, {"source": {"uri": "synthetic:320x240"}},
    {"model": {"path": "zoo:blazeface"}},
]


@pytest.mark.parametrize("doc", ALLOWED, ids=range(len(ALLOWED)))
def test_remote_documents_within_the_allow_lists_apply(doc: dict[str, Any]) -> None:
    remote.resolve(doc, BASE)


def test_folders_are_checked_with_symlinks_resolved(tmp_path: Path) -> None:
    models = tmp_path / "models"
    (models / "faces").mkdir(parents=True)
    (models / "escape").symlink_to("/etc")
    base = {**BASE, "remote": {"model_dirs": [str(models)], "source_dirs": [str(models)]}}
    assert remote.resolve({"model": {"path": str(models / "faces")}}, base).model.path == str(models / "faces")
    for sneaky in (models / "escape" / "passwd", models / ".." / "models2", f"{models}-evil"):
        with pytest.raises(ConfigError, match=r"outside remote\.model_dirs"):
            remote.resolve({"model": {"path": str(sneaky)}}, base)
    with pytest.raises(ConfigError, match=r"outside remote\.source_dirs"):
        remote.resolve({"source": {"uri": str(models / "escape")}}, base)
    with pytest.raises(ConfigError, match=r"reload refused: path: /etc is outside remote.model_dirs"):
        remote.check_reload_path("/etc", EdgeInferConfig.model_validate(base).remote)


def test_the_local_settings_file_fails_closed(tmp_path: Path) -> None:
    missing = tmp_path / "none.yaml"
    assert remote.load_local(missing) == {}
    bad = tmp_path / "local.yaml"
    bad.write_text("trust: {keys: [/k.pub]}\nremote: {model_dirz: [/]}\n")
    with pytest.raises(ConfigError, match=r"local settings .*local\.yaml: remote\.model_dirz: unknown key"):
        remote.load_local(bad)
    with pytest.raises(ConfigError, match="cannot read config file"):  # there, but not a readable file
        remote.load_local(tmp_path)
    good = tmp_path / "ok.yaml"
    good.write_text("remote: {model_dirs: [/srv/models]}\n")
    good.chmod(0o644)
    assert remote.load_local(good) == {"remote": {"model_dirs": ["/srv/models"]}}
    good.chmod(0o646)  # any user could widen what a deployment may do
    with pytest.raises(ConfigError, match=r"can be written by any user \(mode 0646\) -> chmod o-w"):
        remote.load_local(good)
