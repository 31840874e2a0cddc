"""A data plane for the Kubernetes API stand-in, played by the live local stack's real processes (test-only glue,
like the stand-in's kubelet).

The stand-in stores objects but runs nothing. ``ClusterDataPlane`` watches it (polling every ``poll_s``) and does what
a cluster's controllers would, with the local stack:

* a colour's Deployment (``<app>-<slot>``) with replicas > 0 and the image of version V by digest: the local stack's
  slot runs V (``LocalProcessDeployer.deploy``); the Deployment stays unready (``hold_rollout``) until that process
  answers ready; a pod with the Deployment's labels stands for it, its log the process's log. Scaled to 0 or
  deleted: the slot's process and pod are removed.
* the HTTPRoute's backend weights: the same split on the local stack's nginx (``NginxRouter.set_weights``), so
  traffic and Prometheus series follow the route. Every split is kept in ``route_changes``.
* a job pod (image by digest from the settings' ``job_images``): the image's real entrypoint runs locally (the
  stack's ``job_commands`` and ``job_env``, in the project directory) with the pod's arguments, ``--result``
  pointing at a file of its own; the pod ends with that process's exit code and output, and the xcom sidecar reads
  the file back. Every run is kept in ``jobs``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sap_llm_release.kubernetes_settings import KubernetesSettings
from sap_llm_release.routers.base import Weights
from sap_llm_release.targets import COLOURS, local_target
from tests.support.kube_api import PodScript

log = logging.getLogger(__name__)

SERVICE_CONTAINER = "sap-llm"
JOB_CONTAINER = "base"
JOB_LABEL = "sap-llm-release/job"
RESULT_FLAG = "--result"
READY_TIMEOUT_S = 60


@dataclass(frozen=True)
class RouteChange:
    """A split the HTTPRoute held, as applied to nginx."""

    weights: Weights
    resource_version: str
    at: float


@dataclass(frozen=True)
class JobRun:
    """One job pod, run as a local process."""

    pod: str
    job: str
    image: str
    argv: list[str]
    exit_code: int
    result: Any


@dataclass(frozen=True)
class _Slot:
    """What the data plane runs for a colour's Deployment: a version (None: nothing) and the pod standing for it."""

    version: str | None
    generation: int = 0
    pod: str | None = None


class ClusterDataPlane:
    """``with ClusterDataPlane(kube, stack_dir, settings): ...``; ``errors`` holds what went wrong in the watcher."""

    def __init__(self, kube: Any, stack_dir: Path, settings: KubernetesSettings, poll_s: float = 0.2) -> None:
        self.kube, self.settings, self.poll_s = kube, settings, poll_s
        self.stack = json.loads((Path(stack_dir) / "stack.json").read_text())
        self.local = local_target(Path(stack_dir))  # each slot as itself
        self.route_changes: list[RouteChange] = []
        self.jobs: list[JobRun] = []
        self.errors: list[str] = []
        self._versions = {settings.image_for(version): version for version in settings.versions}
        self._job_images = {reference: name for name, reference in settings.job_images.items()}
        self._slots: dict[str, _Slot] = {}  # only slots whose Deployment was seen: the others are left alone
        self._route_version = ""
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="cluster-data-plane", daemon=True)
        self._jobs_running: set[subprocess.Popen] = set()
        self._lock = threading.Lock()
        self._passes = 0

    def __enter__(self) -> ClusterDataPlane:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def start(self) -> ClusterDataPlane:
        for slot in COLOURS:
            self.kube.hold_rollout(self.settings.deployment_name(slot))
        self.kube.on_pod(self._run_job_pod)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(READY_TIMEOUT_S + 10)
        with self._lock:
            for process in self._jobs_running:
                process.kill()

    @property
    def route_weights(self) -> list[Weights]:
        return [change.weights for change in self.route_changes]

    def settle(self, timeout_s: float = 30) -> None:
        """Return once the watcher made a whole pass that began after this call (it saw what the test sees now)."""
        wanted, deadline = self._passes + 2, time.monotonic() + timeout_s
        while self._passes < wanted:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise TimeoutError(f"the cluster data plane did not catch up within {timeout_s:g}s")
            time.sleep(0.05)

    # The watcher.

    def _watch(self) -> None:
        while not self._stop.is_set():
            try:
                self.sync()
            except Exception as exc:  # noqa: BLE001 - kept for the test, the watcher goes on
                log.exception("cluster data plane")
                self.errors.append(repr(exc))
            self._passes += 1
            self._stop.wait(self.poll_s)

    def sync(self) -> None:
        """One pass: start what scaled up, follow the route, then remove what scaled down (a rollback's order)."""
        deployments = {slot: self._deployment(slot) for slot in COLOURS}
        wanted = {slot: self._wanted(deployment) for slot, deployment in deployments.items()}
        for slot in COLOURS:
            if wanted[slot].version is not None:
                self._apply(slot, deployments[slot], wanted[slot])
        self._follow_route()
        for slot in COLOURS:
            if wanted[slot].version is None and slot in self._slots:
                self._apply(slot, deployments[slot], wanted[slot])

    def _deployment(self, slot: str) -> dict | None:
        return self.kube.get("deployments", self.settings.deployment_name(slot), self.settings.namespace)

    def _wanted(self, deployment: dict | None) -> _Slot:
        if deployment is None or not deployment["spec"].get("replicas"):
            return _Slot(None, deployment["metadata"]["generation"] if deployment else 0)
        containers = deployment["spec"]["template"]["spec"]["containers"]
        image = next(c["image"] for c in containers if c["name"] == SERVICE_CONTAINER)
        if image not in self._versions:
            raise ValueError(f"deployment {deployment['metadata']['name']} runs {image}, a digest of no version in "
                             f"the settings")
        return _Slot(self._versions[image], deployment["metadata"]["generation"])

    def _apply(self, slot: str, deployment: dict | None, wanted: _Slot) -> None:
        current = self._slots.get(slot)
        if current is not None and (current.version, current.generation) == (wanted.version, wanted.generation):
            return
        name = self.settings.deployment_name(slot)
        if current is not None and current.pod:
            self.kube.delete("pods", current.pod, self.settings.namespace)
        pod = None
        if wanted.version is None:
            self.local.deployer.remove(slot)
            log.info("data plane: %s removed", slot)
        else:
            self.local.deployer.deploy(slot, wanted.version)
            ready, seen = self.local.deployer.wait_ready(slot, READY_TIMEOUT_S)
            if not ready:  # the Deployment stays unready, as on a cluster whose pods never pass their probe
                self.errors.append(f"{slot} {wanted.version} not ready: {seen}")
            else:
                pod = self._service_pod(slot, deployment)
            log.info("data plane: %s runs %s (%s)", slot, wanted.version, seen)
        self._slots[slot] = _Slot(wanted.version, wanted.generation, pod)
        if deployment is not None and (wanted.version is None or pod is not None):
            self.kube.complete_rollout(name)

    def _service_pod(self, slot: str, deployment: dict) -> str:
        """A running pod with the Deployment's pod template, its log the local process's."""
        template = deployment["spec"]["template"]
        digest = hashlib.sha256(json.dumps(template, sort_keys=True).encode()).hexdigest()[:10]
        name = f"{deployment['metadata']['name']}-{digest}-0"
        started = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        statuses = [{"name": c["name"], "image": c["image"], "imageID": "", "ready": True, "started": True,
                     "restartCount": 0, "state": {"running": {"startedAt": started}}}
                    for c in template["spec"]["containers"]]
        self.kube.put({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": self.settings.namespace, "labels": template["metadata"]["labels"]},
            "spec": template["spec"],
            "status": {"phase": "Running", "startTime": started, "containerStatuses": statuses,
                       "conditions": [{"type": "Ready", "status": "True"}]},
        })
        self.kube.serve_pod_log(self.settings.namespace, name, lambda: self.local.deployer.logs(slot))
        return name

    def _follow_route(self) -> None:
        route = self.kube.get("httproutes", self.settings.route, self.settings.namespace)
        if route is None or route["metadata"]["resourceVersion"] == self._route_version:
            return
        self._route_version = route["metadata"]["resourceVersion"]
        weights = self._split(route)
        if weights is None or (self.route_changes and self.route_changes[-1].weights == weights):
            return
        self.local.router.set_weights(weights)
        self.route_changes.append(RouteChange(weights, self._route_version, time.time()))
        log.info("data plane: nginx follows the route: %s", weights)

    def _split(self, route: dict) -> Weights | None:
        """Blue's and green's share in the first rule that carries both Services (a missing weight is 1)."""
        services = {self.settings.deployment_name(slot): slot for slot in COLOURS}
        for rule in route["spec"].get("rules") or []:
            weights = {services[ref["name"]]: ref.get("weight", 1) for ref in rule.get("backendRefs") or []
                       if ref.get("name") in services and ref.get("kind", "Service") == "Service"}
            if len(weights) == 2 and sum(weights.values()) > 0:
                blue = round(100 * weights["blue"] / sum(weights.values()))
                return Weights(blue, 100 - blue)
        return None

    # The kubelet's side: job pods.

    def _run_job_pod(self, pod: dict) -> PodScript | None:
        container = next((c for c in pod["spec"]["containers"] if c["name"] == JOB_CONTAINER), None)
        image = self._job_images.get(container.get("image")) if container else None
        if image is None:
            return None
        with tempfile.TemporaryDirectory(prefix="sap-llm-job-") as scratch:
            result_file = Path(scratch) / "return.json"
            args = list(container.get("args") or [])
            if RESULT_FLAG in args:  # the pod's xcom path, here a file of this run's own
                args[args.index(RESULT_FLAG) + 1] = str(result_file)
            argv = [*self.stack["job_commands"][image], *args]
            exit_code, output = self._run(argv, pod["spec"].get("activeDeadlineSeconds"))
            text = result_file.read_text() if result_file.exists() else None
        try:
            result = None if text is None else json.loads(text)
        except ValueError:
            result = None
        name = pod["metadata"]["name"]
        job = (pod["metadata"].get("labels") or {}).get(JOB_LABEL, "")
        self.jobs.append(JobRun(name, job, image, argv, exit_code, result))
        log.info("data plane: job pod %s (%s) exit %s", name, job, exit_code)
        return PodScript(match=name, exit_code=exit_code, log=output, result=result)

    def _run(self, argv: list[str], deadline_s: int | None) -> tuple[int, str]:
        process = subprocess.Popen(
            argv, cwd=self.stack["project_dir"], env={**os.environ, **self.stack.get("job_env", {})},
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, text=True,
        )
        with self._lock:
            self._jobs_running.add(process)
        try:
            output, _ = process.communicate(timeout=deadline_s)
            return process.returncode, output
        except subprocess.TimeoutExpired:  # the pod's activeDeadlineSeconds
            process.kill()
            output, _ = process.communicate()
            return 137, output + f"\npod exceeded its active deadline of {deadline_s}s"
        finally:
            with self._lock:
                self._jobs_running.discard(process)
