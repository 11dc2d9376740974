"""The collector configurations parse and wire every pipeline to defined components."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from crm_shared import devstack

CONFIGS = [
    devstack.REPO / "infra" / "otel" / "collector.yaml",
    devstack.REPO / "infra" / "otel-collector.yaml",
]


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_pipelines_use_only_defined_components(path: Path) -> None:
    config: dict[str, Any] = yaml.safe_load(path.read_text())
    pipelines = config["service"]["pipelines"]
    assert {"traces", "metrics"} <= set(pipelines)
    for pipeline in pipelines.values():
        for section in ("receivers", "processors", "exporters"):
            for component in pipeline.get(section, []):
                assert component in config[section], (path.name, section, component)
    assert "otlp" in pipelines["traces"]["receivers"]
    assert "prometheus" in pipelines["metrics"]["receivers"]
    assert "batch" in pipelines["traces"]["processors"]
    (scrape,) = config["receivers"]["prometheus"]["config"]["scrape_configs"]
    assert scrape["job_name"] == "social-crm"


def test_kubernetes_collector_scrapes_the_annotated_pods() -> None:
    config = yaml.safe_load(CONFIGS[0].read_text())
    (scrape,) = config["receivers"]["prometheus"]["config"]["scrape_configs"]
    assert scrape["kubernetes_sd_configs"] == [{"role": "pod"}]
    kept = {
        tuple(r["source_labels"]) for r in scrape["relabel_configs"] if r.get("action") == "keep"
    }
    assert ("__meta_kubernetes_pod_annotation_prometheus_io_scrape",) in kept
    traces = config["service"]["pipelines"]["traces"]
    assert {"memory_limiter", "batch"} <= set(traces["processors"])
