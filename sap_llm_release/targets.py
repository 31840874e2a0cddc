"""A release target: the router, the deployer and the endpoints of one place a release runs.

``local``: blue and green as local processes behind nginx, described by the stack directory the local stack
wrote (``SAP_LLM_STACK_DIR``). ``kubernetes`` is not built yet and fails loudly rather than falling back.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from sap_llm_release.deployers.base import Deployer
from sap_llm_release.deployers.local_process import LocalProcessDeployer
from sap_llm_release.routers.base import Router
from sap_llm_release.routers.nginx import NginxRouter

STACK_DIR_ENV = "SAP_LLM_STACK_DIR"


class TargetError(RuntimeError):
    """The target cannot be built from its configuration."""


@dataclass(frozen=True)
class Target:
    name: str
    router: Router
    deployer: Deployer
    urls: dict[str, str]
    reports_dir: Path

    def url(self, endpoint: str) -> str:
        return self.urls[endpoint]


def local_target(stack_dir: Path) -> Target:
    try:
        stack = json.loads((stack_dir / "stack.json").read_text())
    except (OSError, ValueError) as exc:
        raise TargetError(f"local target: cannot read {stack_dir / 'stack.json'} (is the local stack up?): {exc}")
    ports = stack["ports"]
    addresses = {colour: f"127.0.0.1:{ports[colour]}" for colour in ("blue", "green")}
    return Target(
        name="local",
        router=NginxRouter(
            nginx_conf=stack_dir / "nginx.conf", upstream_file=stack_dir / "upstream.conf", addresses=addresses
        ),
        deployer=LocalProcessDeployer(
            state_dir=stack_dir, ports={c: ports[c] for c in addresses}, server_command=stack["server_command"]
        ),
        urls={"router": f"http://127.0.0.1:{ports['router']}", **{c: f"http://{a}" for c, a in addresses.items()}},
        reports_dir=stack_dir / "reports",
    )


def build_target(kind: str) -> Target:
    """The one place that chooses a target backend by name."""
    if kind == "local":
        stack_dir = os.environ.get(STACK_DIR_ENV)
        if not stack_dir:
            raise TargetError(f"local target: set {STACK_DIR_ENV} to the directory of the running local stack")
        return local_target(Path(stack_dir))
    if kind == "kubernetes":
        raise TargetError("kubernetes target: no Kubernetes deployer and router are built yet")
    raise TargetError(f"unknown target {kind!r}; known: local, kubernetes")
