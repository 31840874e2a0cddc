"""Checks of the release target itself: the router's live split and a colour's readiness."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from sap_llm_release.checks.base import Check, CheckContext, Params
from sap_llm_release.evidence import Evidence, Threshold


class RouterWeightParams(Params):
    colour: Literal["blue", "green"]


class RouterWeight(Check):
    """Measured: the live weight the router gives ``colour`` (read from the router, not remembered)."""

    Params = RouterWeightParams

    def run(self, params: RouterWeightParams, threshold: Threshold | None, context: CheckContext) -> Evidence:
        router = context.require("router")
        weights = router.get_weights()
        measured = weights.blue if params.colour == "blue" else weights.green
        return Evidence.compare(measured, threshold, f"{router.describe()} routes {weights}")


class DeploymentReadyParams(Params):
    colour: Literal["blue", "green"]
    timeout_s: float = Field(default=60.0, gt=0)


class DeploymentReady(Check):
    """Measured: 1 when the colour's deployment answers ready within the timeout, else 0."""

    Params = DeploymentReadyParams

    def run(self, params: DeploymentReadyParams, threshold: Threshold | None, context: CheckContext) -> Evidence:
        deployer = context.require("deployer")
        ready, detail = deployer.wait_ready(params.colour, params.timeout_s)
        return Evidence.compare(int(ready), threshold, detail)
