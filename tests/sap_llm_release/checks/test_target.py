"""router_weight over a real NginxRouter's upstream file, and deployment_ready."""

from __future__ import annotations

import pytest

from sap_llm_release.checks.base import CheckContext
from sap_llm_release.checks.target import (
    DeploymentReady,
    DeploymentReadyParams,
    RouterWeight,
    RouterWeightParams,
)
from sap_llm_release.evidence import Threshold, Verdict
from sap_llm_release.routers.base import RouterError, Weights
from sap_llm_release.routers.nginx import NginxRouter

NO_TRAFFIC = Threshold(op="==", value=0)


@pytest.fixture
def router(tmp_path) -> NginxRouter:
    return NginxRouter(
        nginx_conf=tmp_path / "nginx.conf",
        upstream_file=tmp_path / "upstream.conf",
        addresses={"blue": "127.0.0.1:18081", "green": "127.0.0.1:18082"},
    )


def weight(router: NginxRouter, colour: str, threshold: Threshold = NO_TRAFFIC):
    context = CheckContext(service="sap-llm", router=router)
    return RouterWeight().run(RouterWeightParams(colour=colour), threshold, context)


def live(router: NginxRouter, weights: Weights) -> None:
    router.upstream_file.write_text(router.render(weights))


def test_all_blue(router):
    live(router, Weights(100, 0))
    green = weight(router, "green")
    assert (green.verdict, green.measured, green.threshold) == (Verdict.PASSED, 0, "== 0")
    assert green.detail == f"nginx upstream sap_llm ({router.upstream_file}) routes blue 100% / green 0%"
    blue = weight(router, "blue")
    assert (blue.verdict, blue.measured) == (Verdict.FAILED, 100)


def test_split_is_read_from_the_live_file(router):
    live(router, Weights(95, 5))
    green = weight(router, "green")
    assert (green.verdict, green.measured) == (Verdict.FAILED, 5)
    assert green.detail.endswith("routes blue 95% / green 5%")
    assert weight(router, "blue", Threshold(op="==", value=95)).verdict is Verdict.PASSED


def test_all_green(router):
    live(router, Weights(0, 100))
    assert (weight(router, "blue").verdict, weight(router, "blue").measured) == (Verdict.PASSED, 0)
    assert weight(router, "green").measured == 100


def test_unreadable_router_raises(router):
    with pytest.raises(RouterError, match="read error"):
        weight(router, "green")


class FakeDeployer:
    def __init__(self, ready: bool, seen: str) -> None:
        self.result = (ready, seen)
        self.asked: list[tuple[str, float]] = []

    def wait_ready(self, colour: str, timeout_s: float) -> tuple[bool, str]:
        self.asked.append((colour, timeout_s))
        return self.result


def ready(deployer, colour="green", timeout_s=120.0):
    context = CheckContext(service="sap-llm", deployer=deployer)
    return DeploymentReady().run(
        DeploymentReadyParams(colour=colour, timeout_s=timeout_s), Threshold(op="==", value=1), context
    )


def test_deployment_ready():
    deployer = FakeDeployer(True, "GET http://127.0.0.1:18082/health/ready -> 200")
    evidence = ready(deployer)
    assert deployer.asked == [("green", 120.0)]
    assert (evidence.verdict, evidence.measured, evidence.threshold) == (Verdict.PASSED, 1, "== 1")
    assert evidence.detail == "GET http://127.0.0.1:18082/health/ready -> 200"


def test_deployment_not_ready():
    evidence = ready(FakeDeployer(False, "not ready after 30s: GET ... -> 503"), colour="blue", timeout_s=30)
    assert (evidence.verdict, evidence.measured) == (Verdict.FAILED, 0)
    assert evidence.detail == "not ready after 30s: GET ... -> 503"
