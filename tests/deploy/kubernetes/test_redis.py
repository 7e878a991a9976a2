"""Redis: bundled and reachable from Hearth only, untouched by Hearth's upgrades, or external
with its URL in a Secret."""

from __future__ import annotations

from tests.support.kubernetes import (
    DEFAULT,
    Rendered,
    config_map_of,
    kinds,
    merged,
    one,
    pod_spec,
    render,
    secret_data,
)


def test_bundled_redis_is_reachable_from_hearth_only(default: Rendered) -> None:
    objects = default.objects
    redis = one(objects, "StatefulSet", "redis")
    assert redis["spec"]["volumeClaimTemplates"][0]["spec"]["resources"]["requests"]
    args = redis["spec"]["template"]["spec"]["containers"][0]["args"]
    assert args[args.index("--maxmemory-policy") + 1] == "noeviction"
    service = one(objects, "Service", "redis")
    assert config_map_of(objects, pod_spec(objects, "api"))["REDIS_URL"] == (
        f"redis://{service['metadata']['name']}:6379/0"
    )
    policy = one(objects, "NetworkPolicy", "redis")
    (rule,) = policy["spec"]["ingress"]
    (peer,) = rule["from"]
    assert peer["podSelector"]["matchExpressions"][0]["values"] == ["api", "worker"]


def test_upgrading_hearth_does_not_restart_redis() -> None:
    older = render(merged(DEFAULT, {"image": {"tag": "0.1.0"}})).objects
    newer = render(merged(DEFAULT, {"image": {"tag": "0.2.0"}})).objects
    old, new = (one(objects, "StatefulSet", "redis") for objects in (older, newer))
    assert old["spec"]["template"] == new["spec"]["template"]
    assert pod_spec(older, "api")["containers"] != pod_spec(newer, "api")["containers"]


def test_external_redis_url_goes_to_the_secret(variants: dict[str, Rendered]) -> None:
    objects = variants["external-redis-url"].objects
    assert "StatefulSet" not in kinds(objects)
    assert "NetworkPolicy" not in kinds(objects)
    assert (
        secret_data(one(objects, "Secret"))["REDIS_URL"] == "redis://:redis-pw-91c2@valkey:6379/0"
    )
    assert "REDIS_URL" not in one(objects, "ConfigMap")["data"]


def test_external_redis_url_from_its_own_secret(variants: dict[str, Rendered]) -> None:
    objects = variants["external-redis-secret"].objects
    sources = pod_spec(objects, "worker")["volumes"][0]["projected"]["sources"]
    assert {"secret": {"name": "valkey", "items": [{"key": "REDIS_URL", "path": "REDIS_URL"}]}} in (
        sources
    )
