"""Fleet context, topic layout and IoT policy documents: plain data, checked without synthesising."""

from __future__ import annotations

import pytest
from edgeinfer_cdk.config import ConfigError, FleetConfig
from edgeinfer_cdk.iot_policies import core_policy, device_policy
from edgeinfer_cdk.topics import THING_NAME_VARIABLE, TopicLayout

from edgeinfer.greengrass.recipes import InferenceOptions, render_inference
from edgeinfer.greengrass.topics import THING_VARIABLE

from .test_rollout_lambda import BLOCKED


def arn(kind: str, name: str) -> str:
    return f"arn:{kind}/{name}"


def test_names_derive_from_the_fleet() -> None:
    cfg = FleetConfig(fleet="plant7")
    assert (cfg.thing_group, cfg.core_thing_prefix, cfg.model_package_group) == (
        "plant7-fleet", "plant7-", "plant7-models")
    assert FleetConfig(fleet="plant7", thing_group="line-a").thing_group == "line-a"


def test_context_strings_are_coerced_and_cli_region_wins_over_the_default() -> None:
    context = {"fleet": "plant7", "baseline_deployment": "true", "spooler_max_bytes": "2097152", "region": "eu-west-1"}
    cfg = FleetConfig.from_context(context.get, {"CDK_DEFAULT_REGION": "us-east-1", "CDK_DEFAULT_ACCOUNT": "1"})
    assert (cfg.baseline_deployment, cfg.spooler_max_bytes, cfg.region, cfg.account) == (
        True, 2097152, "eu-west-1", "1")


@pytest.mark.parametrize(("context", "key"), [
    ({"fleet": "Plant 7"}, "fleet"), ({"model_package_group": "Faces_Models"}, "model_package_group"),
    ({"nucleus_version": "2.15"}, "nucleus_version"), ({"spooler_max_bytes": "10"}, "spooler_max_bytes"),
    ({"baseline_deployment": "maybe"}, "baseline_deployment"),
    ({"telemetry_topic": "edgeinfer/{device}/#/{type}"}, "telemetry_topic"),
    ({"rollout": "{not json"}, "rollout"), ({"rollout": "[1]"}, "rollout"),
    ({"rollout": {"rings": []}}, "rollout"), ({"rollout": {"advance_every_minutes": 0}}, "rollout"),
    ({"rollout": {"rings": [{"name": "a", "target": "g"}, {"name": "b", "target": "g"}]}}, "rollout"),
    ({"rollout": {"rings": [{"name": "a", "target": "not a group"}]}}, "rollout"),
    ({"rollout": {"health": {"max_rolled_back_pct": 101}}}, "rollout"), ({"rollout": {"soak": 1}}, "rollout"),
])
def test_unusable_context_is_refused_naming_the_key(context: dict[str, str], key: str) -> None:
    with pytest.raises(ConfigError, match=key):
        FleetConfig.from_context(context.get)


def test_the_rollout_plan_comes_from_context_with_rings_derived_from_the_fleet() -> None:
    cfg = FleetConfig.from_context({"fleet": "plant7", "rollout": '{"advance_every_minutes": 15, '
                                    '"health": {"max_rolled_back_pct": 2}}'}.get)
    assert [(r.name, r.target) for r in cfg.plan.rings] == [("canary", "plant7-canary"), ("fleet", "plant7-fleet")]
    assert (cfg.plan.advance_every_minutes, cfg.plan.health.max_rolled_back_pct) == (15, 2)
    rings = [{"name": "lab", "target": "plant7-lab", "soak_s": 600}, {"name": "all", "target": "plant7-fleet"}]
    cfg = FleetConfig.from_context({"fleet": "plant7", "rollout": {"rings": rings}}.get)
    assert [(r.name, r.target, r.soak_s) for r in cfg.plan.rings] == [("lab", "plant7-lab", 600),
                                                                      ("all", "plant7-fleet", 3600)]


def test_topic_levels_follow_the_template() -> None:
    default = TopicLayout("edgeinfer/{device}/{type}")
    assert (default.level("device"), default.level("type"), default.rule_filter()) == (2, 3, "edgeinfer/+/+")
    custom = TopicLayout("plant/{model}/{device}/{type}")
    assert (custom.level("device"), custom.level("type"), custom.rule_filter("alert")) == (3, 4, "plant/+/+/alert")
    with pytest.raises(ValueError, match="whole topic level"):
        TopicLayout("edgeinfer/{device}-{type}")


def test_policies_allow_exactly_what_the_component_recipe_publishes_and_subscribes() -> None:
    """The IoT policies and the Greengrass recipe's accessControl come from the same topic functions."""
    recipe = render_inference(InferenceOptions(version="1.0.0"))
    mqtt = recipe["ComponentConfiguration"]["DefaultConfiguration"]["accessControl"]["aws.greengrass.ipc.mqttproxy"]
    by_op = {p["operations"][0]: p["resources"] for p in mqtt.values()}
    layout = TopicLayout("edgeinfer/{device}/{type}")
    device = {s["Sid"]: s["Resource"] for s in device_policy(layout, arn)["Statement"]}
    assert device["PublishOwnTopics"] == [arn("topic", t.replace(THING_VARIABLE, THING_NAME_VARIABLE))
                                          for t in by_op["aws.greengrass#PublishToIoTCore"]]
    assert device["SubscribeOwnCommands"] == [arn("topicfilter", t.replace(THING_VARIABLE, THING_NAME_VARIABLE))
                                              for t in by_op["aws.greengrass#SubscribeToIoTCore"]]


def test_a_model_level_in_the_template_becomes_a_policy_wildcard() -> None:
    layout = TopicLayout("plant/{model}/{device}/{type}")
    core = {s["Sid"]: s["Resource"] for s in core_policy(layout, arn, "cam-", "alias-arn")["Statement"]}
    assert arn("topic", "plant/*/cam-*/alert") in core["PublishNucleusAndEdgeinfer"]
    assert arn("topic", "edgeinfer/cam-*/cmd/reply") in core["PublishNucleusAndEdgeinfer"]
    assert core["SubscribeNucleusAndCommands"][-1] == arn("topicfilter", "edgeinfer/cam-*/cmd")
    assert core["TokenExchange"] == ["alias-arn"]


def test_a_stack_for_several_components_per_core_reads_and_allows_their_topics() -> None:
    """A second inference component on a core publishes telemetry under its name (edgeinfer/{device}/{component}/
    {type}, its recipe's default); a stack with that template reads every component's events and its core policy
    allows every component's telemetry, commands and replies."""
    doors = render_inference(InferenceOptions(version="1.0.0", component_name="com.acme.Doors"))
    template = doors["ComponentConfiguration"]["DefaultConfiguration"]["telemetry"]["topic"]
    layout = TopicLayout(template)
    assert (layout.level("device"), layout.level("type")) == (2, 4)
    assert layout.rule_filter("health") == "edgeinfer/+/+/health"
    core = {s["Sid"]: s["Resource"] for s in core_policy(layout, arn, "cam-", "alias-arn")["Statement"]}
    mqtt = doors["ComponentConfiguration"]["DefaultConfiguration"]["accessControl"]["aws.greengrass.ipc.mqttproxy"]
    published = next(p["resources"] for p in mqtt.values() if p["operations"] == ["aws.greengrass#PublishToIoTCore"])
    assert "edgeinfer/{iot:thingName}/com.acme.Doors/health" in published
    assert arn("topic", "edgeinfer/cam-*/*/health") in core["PublishNucleusAndEdgeinfer"]
    assert core["SubscribeNucleusAndCommands"][-1] == arn("topicfilter", "edgeinfer/cam-*/cmd")  # covers .../{c}/cmd


def test_the_lambda_probe_blocks_what_the_asset_leaves_out() -> None:
    pytest.importorskip("aws_cdk", reason="aws-cdk-lib is not installed")
    from edgeinfer_cdk.bundling import NOT_BUNDLED

    import_names = {"opencv-python-headless": "cv2"}
    assert set(BLOCKED) == {import_names.get(d, d) for d in NOT_BUNDLED}
