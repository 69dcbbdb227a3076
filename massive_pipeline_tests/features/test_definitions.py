"""Lineage candles → features in the code location: in its asset graph and as the webserver serves it."""

from __future__ import annotations

from pathlib import Path

import httpx

from massive_pipeline.candles.assets import candle_key
from massive_pipeline.core.catalog import load_catalog
from massive_pipeline.definitions import build_definitions
from massive_pipeline.features.assets import FEATURE_TIMEFRAMES, FEATURES_GROUP, feature_key
from massive_pipeline.features.checks import FEATURE_CHECKS
from massive_pipeline_tests.processes import BIN, free_port, http_ok, pipeline_env, start, wait_until

LINEAGE_QUERY = """
query Lineage($keys: [AssetKeyInput!]) {
  assetNodes(assetKeys: $keys) { assetKey { path } groupName dependencyKeys { path } }
}
"""


def test_each_features_asset_takes_its_candle_asset_as_input(monkeypatch):
    monkeypatch.delenv("MASSIVE_CATALOG", raising=False)  # the packaged catalog, as deployed
    catalog = load_catalog()
    defs = build_definitions(catalog)
    graph = defs.get_repository_def().asset_graph
    features = {k for k in graph.get_all_asset_keys() if k.path[0] == FEATURES_GROUP}
    expected = {
        feature_key(spec.symbol, tf): candle_key(spec.symbol, tf)
        for spec in catalog
        for tf in FEATURE_TIMEFRAMES
        if tf.minutes >= spec.base_timeframe.minutes
    }
    assert features == set(expected) and len(features) == 2 * len(list(catalog))
    for key, upstream in expected.items():
        node = graph.get(key)
        assert node.parent_keys == {upstream}
        assert node.group_name == FEATURES_GROUP
        assert node.partitions_def == graph.get(upstream).partitions_def  # partition to partition
        assert {c.name for c in node.check_keys} == set(FEATURE_CHECKS)
        assert key in graph.get(upstream).child_keys
    # a model for users: no job of the code location (so no schedule or sensor) runs them
    repo = defs.get_repository_def()
    named_jobs = [j for j in repo.get_all_jobs() if not j.name.startswith("__ASSET_JOB")]
    assert named_jobs and not any(set(j.asset_layer.selected_asset_keys) & features for j in named_jobs)


def test_the_webserver_shows_candles_upstream_of_features(small_catalog: Path, tmp_path: Path):
    home = tmp_path / "dagster_home"
    home.mkdir()
    port = free_port()
    env = pipeline_env(DAGSTER_HOME=str(home), MASSIVE_CATALOG=str(small_catalog))
    web = start(
        [
            str(BIN / "dagster-webserver"),
            "-h",
            "127.0.0.1",
            "-p",
            str(port),
            "-m",
            "massive_pipeline.definitions",
        ],
        env=env,
        log=tmp_path / "webserver.log",
        name="webserver",
    )
    url = f"http://127.0.0.1:{port}"
    try:

        def ready() -> bool:
            assert web.alive(), f"webserver exited:\n{web.output()}"
            return http_ok(f"{url}/server_info")

        wait_until(ready, timeout=120, interval=0.25, what="webserver /server_info", on_timeout=web.output)
        keys = [{"path": feature_key(s, tf).path} for s in ("EURUSD", "BTCUSD") for tf in FEATURE_TIMEFRAMES]
        answer = httpx.post(
            f"{url}/graphql", json={"query": LINEAGE_QUERY, "variables": {"keys": keys}}, timeout=60
        ).json()
        nodes = {tuple(n["assetKey"]["path"]): n for n in answer["data"]["assetNodes"]}
        assert set(nodes) == {tuple(k["path"]) for k in keys}
        for path, node in nodes.items():
            assert node["groupName"] == FEATURES_GROUP
            assert node["dependencyKeys"] == [{"path": ["candles", *path[1:]]}]
    finally:
        web.stop()
