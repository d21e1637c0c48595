"""The one config schema: file loading, patches, defaults."""

from __future__ import annotations

from pathlib import Path

import pytest

from edgeinfer.core import config as cfgmod
from edgeinfer.core import scope
from edgeinfer.core.errors import ConfigError


def test_patch_merges_and_validates_whole() -> None:
    cfg = cfgmod.EdgeInferConfig()
    new = cfgmod.apply_patch(cfg, {"pipeline": {"max_batch": 4}, "model": {"score_threshold": 0.7}})
    assert new.pipeline.max_batch == 4 and new.pipeline.queue_size == cfg.pipeline.queue_size
    assert new.model.score_threshold == 0.7 and cfg.model.score_threshold is None  # original untouched


def test_null_in_a_patch_resets_to_default() -> None:
    cfg = cfgmod.apply_patch(cfgmod.EdgeInferConfig(), {"model": {"score_threshold": 0.7}})
    assert cfgmod.apply_patch(cfg, {"model": {"score_threshold": None}}).model.score_threshold is None


@pytest.mark.parametrize("text, words", [
    ("pipeline: {queue_size: 0}", "pipeline.queue_size: Input should be greater than or equal to 1"),
    ("modle: {}", "modle: unknown key"),
    ("- a list", "must hold a mapping"),
    ("a: [unclosed", "is not valid YAML"),
])
def test_bad_config_files_say_what_to_fix(tmp_path: Path, text: str, words: str) -> None:
    p = tmp_path / "c.yaml"
    p.write_text(text)
    with pytest.raises(ConfigError) as err:
        cfgmod.validate(cfgmod.load_file(p), f"config {p}")
    assert words in str(err.value) and "\n" not in str(err.value)


def test_defaults_json_round_trips_and_holds_no_local_only_setting() -> None:
    d = cfgmod.defaults_json()
    assert not {"device_id", "state_dir", "hooks", "remote", "trust"} & d.keys() and "dir" not in d["output"]
    assert cfgmod.validate(d).model_dump(mode="json", exclude=scope.local_exclude(cfgmod.EdgeInferConfig)) == d


def test_state_dir_precedence(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("EDGEINFER_STATE_DIR", str(tmp_path / "env"))
    assert cfgmod.state_dir() == tmp_path / "env"
    assert cfgmod.state_dir(str(tmp_path / "flag")) == tmp_path / "flag"
    monkeypatch.delenv("EDGEINFER_STATE_DIR")
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xdg"))
    assert cfgmod.state_dir() == tmp_path / "xdg" / "edgeinfer"
