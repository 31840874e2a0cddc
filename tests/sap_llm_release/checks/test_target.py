"""router_weight over a real NginxRouter and a running nginx, and deployment_ready."""

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
from tests.support.nginx import nginx_router, running

NO_TRAFFIC = Threshold(op="==", value=0)


@pytest.fixture
def router(tmp_path) -> NginxRouter:
    with running(nginx_router(tmp_path)) as router:
        yield router


def weight(router: NginxRouter, colour: str, threshold: Threshold = NO_TRAFFIC):
    context = CheckContext(service="sap-llm", router=router)
    return RouterWeight().run(RouterWeightParams(colour=colour), threshold, context)


def test_all_blue(router):
    green = weight(router, "green")
    assert (green.verdict, green.measured, green.threshold) == (Verdict.PASSED, 0, "== 0")
    assert green.detail == f"nginx upstream sap_llm ({router.upstream_file}) routes blue 100% / green 0%"
    blue = weight(router, "blue")
    assert (blue.verdict, blue.measured) == (Verdict.FAILED, 100)


def test_split_is_read_from_the_running_nginx(router):
    router.set_weights(Weights(95, 5))
    green = weight(router, "green")
    assert (green.verdict, green.measured) == (Verdict.FAILED, 5)
    assert green.detail.endswith("routes blue 95% / green 5%")
    assert weight(router, "blue", Threshold(op="==", value=95)).verdict is Verdict.PASSED


def test_all_green(router):
    router.set_weights(Weights(0, 100))
    assert (weight(router, "blue").verdict, weight(router, "blue").measured) == (Verdict.PASSED, 0)
    assert weight(router, "green").measured == 100


def test_blue_has_no_traffic_measures_what_nginx_serves_not_the_file(router):
    """The decommission gate (blue == 0): a file that says all green while nginx still serves 95/5 (a reload that
    did not take effect) does not let blue be decommissioned."""
    router.set_weights(Weights(95, 5))
    router.upstream_file.write_text(router.render(Weights(0, 100)))  # written, never applied
    blue = weight(router, "blue")
    assert (blue.verdict, blue.measured) == (Verdict.FAILED, 95)
    assert blue.detail.endswith("routes blue 95% / green 5%")


def test_unreadable_router_raises(tmp_path):
    with pytest.raises(RouterError, match="cannot read the live split"):
        weight(nginx_router(tmp_path), "green")  # nginx not running


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
