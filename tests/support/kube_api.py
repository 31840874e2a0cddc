"""A Kubernetes API server stand-in for tests: kmock's emulator on a loopback port, plus the API server behaviour that
kmock 0.8 lacks.

``ClusterStandIn`` runs ``KubeEmulator`` behind ``kmock.Server`` in a thread with its own event loop, so the real
``kubernetes`` client, ``kubernetes_asyncio`` and the KubernetesPodOperator reach it over HTTP. The glue over kmock:

* the resources of kmock's bundled K3s list (HTTPRoutes included) answer discovery, reads and writes; any other
  resource is a 404, as on a real server;
* create sets uid, resourceVersion (one counter, bumped on every write), creationTimestamp and generation (bumped when
  the spec changes) and answers 201: kmock answered 200, which ``CustomObjectsApi`` maps to None;
* PUT (replace), JSON merge patch, strategic merge patch (merge-patch semantics with lists of named items merged by
  name; refused on custom resources, as a real server does) and JSON patch; a ``metadata.resourceVersion`` in the
  body is a precondition (409 when stale); a client's ``status`` is ignored where the resource has a status
  subresource;
* ``labelSelector`` (``=``, ``==``, ``!=``, ``in``, ``notin``, ``key``, ``!key``) and ``fieldSelector`` (any dotted
  field, ``=``, ``==``, ``!=``) on lists and watches;
* a Gateway controller: an HTTPRoute written is reported Accepted by each of its parentRefs at its generation
  (``status.parents``) unless ``hold_route_acceptance``;
* a deployment controller (status follows the spec unless ``hold_rollout``; ``complete_rollout`` makes a held
  deployment's current spec ready) and a kubelet that runs pods as scripted (``script_pod``) or as an ``on_pod`` hook
  decides, with the ``log`` and ``exec`` subresources the KubernetesPodOperator uses; ``serve_pod_log`` gives a pod
  that no kubelet runs (one ``put`` in) a log;
* ``fail_next`` / ``stall_next`` fault injection.

kmock's ``Server`` hooks aiohttp's resolver while it runs: stop stand-ins in the reverse order of starting them.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import datetime
import http
import inspect
import json
import re
import secrets
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import aiohttp.web
import attrs
import jsonpatch
import kmock

SIDECAR = "airflow-xcom-sidecar"
EMPTY_XCOM_RESULT = "__airflow_xcom_result_empty__"  # what the provider's sidecar command prints for no return.json
EXEC_PROTOCOL = "v4.channel.k8s.io"
KUBELET_STEP_S = 0.05
_CUSTOM_GROUPS = frozenset({"gateway.networking.k8s.io"})  # served by CRDs in kmock's bundled K3s list
_CREATED_STATUS = {"pods": {"phase": "Pending", "qosClass": "BestEffort"}, "namespaces": {"phase": "Active"}}
_IMMUTABLE_METADATA = ("name", "namespace", "uid", "creationTimestamp", "resourceVersion")
_TERMINATION_LOG_LINES, _TERMINATION_LOG_BYTES = 80, 2048  # the kubelet's FallbackToLogsOnError tail

_SET_TERM = re.compile(r"(?P<key>[\w./-]+)\s+(?P<op>in|notin)\s+\((?P<values>[^)]*)\)")
_EQUALITY_TERM = re.compile(r"(?P<key>[\w./-]+)\s*(?P<op>==|=|!=)\s*(?P<value>[\w./-]*)")
_EXISTS_TERM = re.compile(r"(?P<negated>!?)\s*(?P<key>[\w./-]+)")
_FIELD_TERM = re.compile(r"(?P<path>[\w.]+)\s*(?P<op>==|=|!=)\s*(?P<value>.*)")
_NAMESPACE_PATH = re.compile(r"/api/v1/namespaces(?P<rest>(/[^/]+(/status|/finalize)?)?)/?")
_NAMESPACES_ALIAS = "cluster-namespaces"
_NAMESPACES = kmock.resource("", "v1", "namespaces")


class SeenRequest(NamedTuple):
    """A request as the stand-in saw it."""

    method: str
    path: str
    query: dict[str, str]


@dataclass(frozen=True)
class PodScript:
    """What the kubelet makes of a pod whose name starts with ``match`` or with a container image equal to it."""

    match: str
    exit_code: int = 0
    log: str = ""
    result: Any = None
    run_s: float = 0.2

    def fits(self, pod: dict) -> bool:
        images = [container.get("image") for container in pod["spec"].get("containers", [])]
        return pod["metadata"]["name"].startswith(self.match) or self.match in images


@dataclass
class _Fault:
    method: str
    path_contains: str
    times: int
    status: int = 0
    body: dict | None = None
    stall_s: float = 0.0
    answer_late_s: float = 0.0  # serve the request at once, send its answer this much later

    def fits(self, request: kmock.Request) -> bool:
        return request.method.value == self.method.upper() and self.path_contains in request.url.path

    def take(self, faults: list[_Fault]) -> None:
        """Count one use of this fault, dropping it from ``faults`` once used up."""
        self.times -= 1
        if self.times <= 0:
            faults.remove(self)


@dataclass(frozen=True)
class _LabelRequirement:
    key: str
    operator: str  # in, notin, exists, !exists
    values: frozenset[str] = frozenset()

    def __call__(self, labels: dict) -> bool:
        present = self.key in labels
        if self.operator in ("exists", "!exists"):
            return present == (self.operator == "exists")
        inside = present and labels[self.key] in self.values
        return inside == (self.operator == "in")


@dataclass(frozen=True)
class _FieldRequirement:
    path: tuple[str, ...]
    value: str
    equal: bool

    def __call__(self, obj: dict) -> bool:
        found: Any = obj
        for part in self.path:
            found = found.get(part) if isinstance(found, dict) else None
        return (str("" if found is None else found) == self.value) == self.equal


@dataclass
class _PodRun:
    """One pod's life on the stand-in's kubelet: its script and each container's state."""

    script: PodScript
    containers: list[dict]
    states: dict[str, dict] = field(default_factory=dict)
    started: datetime.datetime | None = None
    task: asyncio.Task | None = None

    def container(self, name: str) -> dict:
        return next(container for container in self.containers if container["name"] == name)

    def is_running(self, name: str) -> bool:
        return "running" in self.states.get(name, {})

    def has_started(self, name: str) -> bool:
        return bool(self.states.get(name)) and "waiting" not in self.states[name]

    def wait(self) -> None:
        self.states = {container["name"]: {"waiting": {"reason": "ContainerCreating"}} for container in self.containers}

    def start(self) -> None:
        self.started = _utcnow()
        self.states = {container["name"]: {"running": {"startedAt": _rfc3339(self.started)}}
                       for container in self.containers}

    def finish(self, name: str, exit_code: int) -> None:
        terminated = {"exitCode": exit_code, "reason": "Completed" if exit_code == 0 else "Error",
                      "startedAt": _rfc3339(self.started), "finishedAt": _rfc3339(_utcnow())}
        if exit_code and self.container(name).get("terminationMessagePolicy") == "FallbackToLogsOnError":
            tail = "\n".join(self.script.log.splitlines()[-_TERMINATION_LOG_LINES:])
            terminated["message"] = tail[-_TERMINATION_LOG_BYTES:]
        self.states[name] = {"terminated": terminated}

    def log_lines(self, name: str) -> list[tuple[datetime.datetime, str]]:
        lines = [] if name == SIDECAR else self.script.log.splitlines()
        return [(self.started + datetime.timedelta(microseconds=index), line) for index, line in enumerate(lines)]

    def status(self, base: dict) -> dict:
        statuses = [
            {"name": container["name"], "image": container.get("image", ""), "imageID": "",
             "containerID": f"containerd://{container['name']}", "restartCount": 0,
             "ready": self.is_running(container["name"]), "started": self.is_running(container["name"]),
             "state": self.states[container["name"]]}
            for container in self.containers
        ]
        ready = "True" if all(status["ready"] for status in statuses) else "False"
        conditions = [{"type": kind, "status": value} for kind, value in
                      (("PodScheduled", "True"), ("Initialized", "True"), ("ContainersReady", ready), ("Ready", ready))]
        status = {**base, "phase": _phase([status["state"] for status in statuses]), "conditions": conditions,
                  "containerStatuses": statuses, "hostIP": "10.0.0.2", "podIP": "10.42.0.9"}
        if self.started is not None:
            status["startTime"] = _rfc3339(self.started)
        return status


@attrs.define(kw_only=True)
class KubeEmulator(kmock.KubernetesEmulator):
    """kmock's emulator with the API server behaviour it lacks (see the module docstring)."""

    _revision: int = attrs.field(default=0, init=False)
    _held: set[str] = attrs.field(factory=set, init=False)
    _unaccepted_routes: set[str] = attrs.field(factory=set, init=False)
    _completed: dict[str, int] = attrs.field(factory=dict, init=False)  # held deployment -> generation made ready
    _scripts: list[PodScript] = attrs.field(factory=list, init=False)
    _pod_hooks: list[Callable[[dict], PodScript | None]] = attrs.field(factory=list, init=False)
    _log_sources: dict[tuple[str, str], Callable[[], str]] = attrs.field(factory=dict, init=False)
    _faults: list[_Fault] = attrs.field(factory=list, init=False)
    _seen: list[SeenRequest] = attrs.field(factory=list, init=False)
    _pod_runs: dict[tuple, _PodRun] = attrs.field(factory=dict, init=False)
    _closing: asyncio.Event = attrs.field(factory=asyncio.Event, init=False)

    def __attrs_post_init__(self) -> None:
        super().__attrs_post_init__()
        self._resources.load_bundled()

    # The test-facing side, called in the loop by ClusterStandIn.

    @property
    def seen(self) -> list[SeenRequest]:
        return list(self._seen)

    async def seed(self, obj: dict) -> dict:
        """Store ``obj`` as given, with the metadata a create sets; a deployment without a status is rolled out."""
        resource, info = self._resource_of(obj)
        obj = copy.deepcopy(obj)
        metadata = obj.setdefault("metadata", {})
        namespace = metadata.get("namespace", "default") if info.namespaced else None
        key = (resource, namespace, metadata["name"])
        self._apply_create_defaults(obj, resource, info, namespace)
        stored = await self._store(key, obj, "ADDED" if self._current(key) is None else "MODIFIED")
        if resource.plural in ("deployments", "httproutes") and "status" not in obj:
            await self._react(key)
        return stored

    def stored(self, plural: str, namespace: str | None = None) -> list[dict]:
        return self._stored(lambda resource: resource.plural == plural, namespace)

    async def hold_rollout(self, name: str) -> None:
        self._held.add(name)
        for key in [key for key in self._objects.keys() if key[0].plural == "deployments" and key[2] == name]:
            await self._roll_out(key)

    async def hold_route_acceptance(self, name: str) -> None:
        self._unaccepted_routes.add(name)

    async def complete_rollout(self, name: str) -> None:
        for key in [key for key in self._objects.keys() if key[0].plural == "deployments" and key[2] == name]:
            deployment = self._current(key)
            if deployment is not None:
                self._completed[name] = deployment["metadata"].get("generation", 1)
                await self._roll_out(key)

    def script_pod(self, script: PodScript) -> None:
        self._scripts.append(script)

    def on_pod(self, hook: Callable[[dict], PodScript | None]) -> None:
        self._pod_hooks.append(hook)

    def serve_pod_log(self, namespace: str, name: str, read: Callable[[], str | list]) -> None:
        self._log_sources[(namespace, name)] = read

    async def delete(self, plural: str, name: str, namespace: str | None = None) -> bool:
        found = [key for key in self._objects.keys() if key[0].plural == plural and key[1] == namespace
                 and key[2] == name and not self._objects[key].deleted]
        for key in found:
            await self._delete(key, self._current(key))
        return bool(found)

    def inject(self, fault: _Fault) -> None:
        self._faults.append(fault)

    async def close(self) -> None:
        self._closing.set()
        for run in self._pod_runs.values():
            run.task.cancel()
        await asyncio.gather(*(run.task for run in self._pod_runs.values()), return_exceptions=True)

    # The HTTP side.

    async def __call__(self, raw_request: aiohttp.web.BaseRequest) -> aiohttp.web.StreamResponse:
        """kmock reads ``/api/v1/namespaces/{name}`` as a namespace prefix only (``/api/v1/namespaces`` fails): the
        namespace objects' own paths go in under an alias it parses as a cluster-scoped resource's."""
        if match := _NAMESPACE_PATH.fullmatch(raw_request.path):
            path = f"/api/v1/{_NAMESPACES_ALIAS}{match['rest']}"
            raw_request = raw_request.clone(rel_url=raw_request.rel_url.with_path(path, keep_query=True))
        return await super().__call__(raw_request)

    async def _handle(self, request: kmock.Request) -> aiohttp.web.StreamResponse:
        if request.resource is not None and request.resource.plural == _NAMESPACES_ALIAS:
            path = request.url.path.replace(_NAMESPACES_ALIAS, "namespaces", 1)
            request = attrs.evolve(request, resource=_NAMESPACES, url=request.url.with_path(path, keep_query=True))
        self._seen.append(SeenRequest(request.method.value, request.url.path, dict(request.params)))
        late = next((fault for fault in self._faults if fault.answer_late_s and fault.fits(request)), None)
        if late is not None:
            late.take(self._faults)
            response = await self._handle_on_time(request)
            await self._pause(late.answer_late_s)
            return response
        injected = await self._injected_answer(request)
        if injected is not None:
            return injected
        return await self._handle_on_time(request)

    async def _handle_on_time(self, request: kmock.Request) -> aiohttp.web.StreamResponse:
        resource = request.resource
        if resource is None or resource.plural is None:
            return await super()._handle(request)  # discovery and /version, as kmock serves them
        if resource not in self._resources:
            raise _api_error(404, "NotFound", "the server could not find the requested resource")
        if request.subresource in ("log", "exec"):
            serve = self._serve_log if request.subresource == "log" else self._serve_exec
            return await serve(request)
        if request.params.get("watch", "").lower() in ("true", "1"):
            return await self._serve_watch(request)
        code, body = await self._serve_object(request)
        return aiohttp.web.json_response(body, status=code)

    async def _render_error(self, exc: Exception) -> aiohttp.web.StreamResponse:
        if isinstance(exc, kmock.KubernetesError):
            body = _status_body(exc.status, exc.reason, exc.message, exc.details)
            return aiohttp.web.json_response(body, status=exc.status)
        return await super()._render_error(exc)

    async def _injected_answer(self, request: kmock.Request) -> aiohttp.web.StreamResponse | None:
        fault = next((fault for fault in self._faults if not fault.answer_late_s and fault.fits(request)), None)
        if fault is None:
            return None
        fault.take(self._faults)
        if fault.stall_s:
            await self._pause(fault.stall_s)
            return None
        reason = http.HTTPStatus(fault.status).phrase.replace(" ", "")
        message = f"injected failure for {request.method.value} {request.url.path}"
        return aiohttp.web.json_response(fault.body or _status_body(fault.status, reason, message), status=fault.status)

    async def _serve_object(self, request: kmock.Request) -> tuple[int, dict]:
        if request.subresource not in (None, "status"):
            raise _api_error(404, "NotFound", "the server could not find the requested resource")
        method, info = request.method.value, self._resources[request.resource]
        if request.name is None:
            if method == "GET":
                return 200, self._list(request, info)
            if method == "POST":
                return 201, await self._create(request, info)
            raise _api_error(405, "MethodNotAllowed", "the server does not allow this method on the requested resource")
        key = (request.resource, request.namespace if info.namespaced else None, request.name)
        current = self._current(key)
        if current is None:
            raise _not_found(request.resource, request.name)
        if method == "DELETE":
            return 200, await self._delete(key, current)
        if method in ("PUT", "PATCH"):
            return 200, await self._update(request, key, current, info)
        return 200, current

    def _list(self, request: kmock.Request, info: kmock.ResourceInfo) -> dict:
        selects = _selector(request)
        items = [obj for obj in self._stored(lambda resource: resource == request.resource) if selects(obj)]
        group_version = "/".join(filter(None, (request.resource.group, request.resource.version)))
        return {"apiVersion": group_version, "kind": f"{info.kind}List",
                "metadata": {"resourceVersion": str(self._revision)}, "items": items}

    async def _create(self, request: kmock.Request, info: kmock.ResourceInfo) -> dict:
        obj = copy.deepcopy(_body_dict(request))
        metadata = obj.setdefault("metadata", {})
        if not metadata.get("name") and metadata.get("generateName"):
            metadata["name"] = metadata["generateName"] + secrets.token_hex(3)[:5]
        if not metadata.get("name"):
            raise _api_error(422, "Invalid", "metadata.name: Required value: name or generateName is required")
        namespace = (request.namespace or metadata.get("namespace") or "default") if info.namespaced else None
        key = (request.resource, namespace, metadata["name"])
        if self._current(key) is not None:
            raise _api_error(409, "AlreadyExists", f"{_qualified(request.resource)} \"{metadata['name']}\" already "
                             "exists", name=metadata["name"], group=request.resource.group,
                             kind=request.resource.plural)
        self._apply_create_defaults(obj, request.resource, info, namespace)
        if "status" in info.subresources:
            obj.pop("status", None)
        if request.resource.plural in _CREATED_STATUS:
            obj["status"] = copy.deepcopy(_CREATED_STATUS[request.resource.plural])
        stored = await self._store(key, obj, "ADDED")
        if request.resource.plural == "pods":
            self._start_kubelet(key, stored)
        await self._react(key)
        return stored

    async def _update(self, request: kmock.Request, key: tuple, current: dict, info: kmock.ResourceInfo) -> dict:
        _check_precondition(request.data, current, key)
        if request.method.value == "PUT":
            proposed = copy.deepcopy(_body_dict(request))
        else:
            proposed = _patched(request, current)
        if request.subresource == "status":
            proposed = {**current, "status": proposed.get("status")}
        elif "status" in info.subresources:
            proposed.pop("status", None)
            if "status" in current:
                proposed["status"] = current["status"]
        proposed.update(apiVersion=current["apiVersion"], kind=current["kind"])
        metadata, kept = proposed.setdefault("metadata", {}), current["metadata"]
        metadata.update({name: kept[name] for name in _IMMUTABLE_METADATA if name in kept})
        metadata["generation"] = kept.get("generation", 1) + (proposed.get("spec") != current.get("spec"))
        if proposed == current:
            return current
        stored = await self._store(key, proposed, "MODIFIED")
        if request.subresource is None:
            await self._react(key)
        return stored

    async def _delete(self, key: tuple, current: dict) -> dict:
        run = self._pod_runs.pop(key, None)
        if run is not None:
            run.task.cancel()
        self._revision += 1
        current["metadata"]["resourceVersion"] = str(self._revision)
        self._objects[key].delete()
        await self._buses[key[0]].put({"type": "DELETED", "object": copy.deepcopy(current)})
        if key[0].plural == "pods":
            return current
        details = {"name": key[2], "group": key[0].group, "kind": key[0].plural, "uid": current["metadata"]["uid"]}
        return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "details": details}

    async def _serve_watch(self, request: kmock.Request) -> aiohttp.web.StreamResponse:
        bus = self._buses[request.resource]
        marker = await bus.mark()
        response = aiohttp.web.StreamResponse(headers={"Content-Type": "application/json"})
        await response.prepare(request._raw_request)
        timeout = float(request.params["timeoutSeconds"]) if "timeoutSeconds" in request.params else None
        pump = asyncio.ensure_future(self._pump_events(request, response, marker))
        closing = asyncio.ensure_future(self._closing.wait())
        try:
            await asyncio.wait({pump, closing}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (pump, closing):
                task.cancel()
            await asyncio.gather(pump, closing, return_exceptions=True)
            await bus.unmark(marker)
        return response

    async def _pump_events(self, request: kmock.Request, response: aiohttp.web.StreamResponse, marker: Any) -> None:
        """The current objects as ADDED (unless the watch resumes from a resourceVersion), then every change."""
        selects = _selector(request)
        with contextlib.suppress(ConnectionResetError):
            if request.params.get("resourceVersion", "0") in ("", "0"):
                for obj in self._list(request, self._resources[request.resource])["items"]:
                    await response.write(_json_line({"type": "ADDED", "object": obj}))
            async for event in self._buses[request.resource].stream(since=marker):
                if selects(event["object"]):
                    await response.write(_json_line(event))

    async def _serve_log(self, request: kmock.Request) -> aiohttp.web.StreamResponse:
        key, pod = self._pod(request)
        container, run = _container_name(request, pod), self._pod_runs.get(key)
        if run is not None and not run.has_started(container):
            raise _api_error(400, "BadRequest", f'container "{container}" in pod "{request.name}" is waiting to '
                             "start: ContainerCreating")
        if run is not None:
            lines = run.log_lines(container)
        elif read := self._log_sources.get((request.namespace, request.name)):
            now, found = _utcnow(), await asyncio.to_thread(read)
            lines = found if isinstance(found, list) else [(now, line) for line in found.splitlines()]
        else:
            lines = []
        if "sinceSeconds" in request.params:
            since = _utcnow() - datetime.timedelta(seconds=int(request.params["sinceSeconds"]))
            lines = [(moment, line) for moment, line in lines if moment >= since]
        if "tailLines" in request.params:
            tail = int(request.params["tailLines"])
            lines = lines[-tail:] if tail else []
        stamped = request.params.get("timestamps", "").lower() == "true"
        response = aiohttp.web.StreamResponse(headers={"Content-Type": "text/plain"})
        await response.prepare(request._raw_request)
        await response.write("".join(
            f"{_rfc3339(moment, fraction=True)} {line}\n" if stamped else f"{line}\n" for moment, line in lines
        ).encode())
        following = request.params.get("follow", "").lower() == "true" and run is not None
        while following and run.is_running(container) and self._pod_runs.get(key) is run and not self._closing.is_set():
            await asyncio.sleep(KUBELET_STEP_S)
        return response

    async def _serve_exec(self, request: kmock.Request) -> aiohttp.web.WebSocketResponse:
        key, pod = self._pod(request)
        container, run = _container_name(request, pod), self._pod_runs.get(key)
        if run is None or not run.is_running(container):
            raise _api_error(400, "BadRequest", f'unable to upgrade connection: container not found ("{container}")')
        raw = request._raw_request
        socket = aiohttp.web.WebSocketResponse(protocols=(EXEC_PROTOCOL,))
        await socket.prepare(raw)
        command = " ".join(raw.query.getall("command", []))
        if request.params.get("stdin", "").lower() == "true":
            command = f"{command} {await _read_stdin(socket)}"
        output = await self._run_command(key, run, container, command)
        if output:
            await socket.send_bytes(b"\x01" + output.encode())
        await socket.send_bytes(b"\x03" + json.dumps({"metadata": {}, "status": "Success"}).encode())
        await socket.close()
        return socket

    async def _run_command(self, key: tuple, run: _PodRun, container: str, command: str) -> str:
        """The sidecar's two commands: print the result file, and end the sidecar; anything else prints nothing."""
        if "return.json" in command:
            return f"{EMPTY_XCOM_RESULT}\n" if run.script.result is None else json.dumps(run.script.result)
        if container == SIDECAR and "kill" in command:
            run.finish(container, 0)
            await self._write_pod_status(key, run)
        return ""

    # The controllers.

    async def _react(self, key: tuple) -> None:
        if key[0].plural == "deployments":
            await self._roll_out(key)
        elif key[0].plural == "httproutes" and key[2] not in self._unaccepted_routes:
            await self._accept_route(key)

    async def _accept_route(self, key: tuple) -> None:
        """A Gateway controller: every parentRef reports the route Accepted at its current generation."""
        route = self._current(key)
        if route is None:
            return
        generation = route["metadata"].get("generation", 1)
        accepted = {"type": "Accepted", "status": "True", "reason": "Accepted", "observedGeneration": generation,
                    "lastTransitionTime": _rfc3339(datetime.datetime.now(datetime.timezone.utc)), "message": ""}
        parents = [{"parentRef": ref, "controllerName": "stand-in.example.com/gateway-controller",
                    "conditions": [accepted]} for ref in route.get("spec", {}).get("parentRefs") or []]
        route["status"] = {"parents": parents}
        await self._store(key, route, "MODIFIED")

    async def _roll_out(self, key: tuple) -> None:
        deployment = self._current(key)
        if deployment is None:
            return
        held = key[2] in self._held and self._completed.get(key[2]) != deployment["metadata"].get("generation", 1)
        status = _deployment_status(deployment, held=held)
        if deployment.get("status") != status:
            deployment["status"] = status
            await self._store(key, deployment, "MODIFIED")

    def _start_kubelet(self, key: tuple, pod: dict) -> None:
        script = next((script for script in reversed(self._scripts) if script.fits(pod)), PodScript(match=""))
        run = _PodRun(script=script, containers=pod["spec"].get("containers", []))
        run.task = asyncio.create_task(self._kubelet(key, run, pod))
        self._pod_runs[key] = run

    async def _kubelet(self, key: tuple, run: _PodRun, pod: dict) -> None:
        await asyncio.sleep(KUBELET_STEP_S)
        run.wait()
        await self._write_pod_status(key, run)
        await asyncio.sleep(KUBELET_STEP_S)
        run.start()
        await self._write_pod_status(key, run)
        decided = None
        for hook in reversed(self._pod_hooks):  # the latest hook that decides wins; the containers run meanwhile
            if (decided := await asyncio.to_thread(hook, copy.deepcopy(pod))) is not None:
                break
        if decided is None:
            await asyncio.sleep(run.script.run_s)
        else:
            run.script = decided
        for container in run.containers:
            if container["name"] != SIDECAR:
                run.finish(container["name"], run.script.exit_code)
        await self._write_pod_status(key, run)

    async def _write_pod_status(self, key: tuple, run: _PodRun) -> None:
        pod = self._current(key)
        if pod is not None:
            pod["status"] = run.status(pod.get("status", {}))
            await self._store(key, pod, "MODIFIED")

    # The store.

    def _stored(self, fits: Callable[[kmock.resource], bool], namespace: str | None = None) -> list[dict]:
        found = [(key, obj) for key, obj in self._objects.items() if fits(key[0]) and not obj.deleted]
        found = [(key, obj) for key, obj in found if namespace is None or key[1] == namespace]
        return [copy.deepcopy(obj.raw) for key, obj in sorted(found, key=lambda item: (item[0][1] or "", item[0][2]))]

    def _current(self, key: tuple) -> dict | None:
        if key not in self._objects or self._objects[key].deleted:
            return None
        return copy.deepcopy(self._objects[key].raw)

    async def _store(self, key: tuple, obj: dict, event: str) -> dict:
        self._revision += 1
        obj["metadata"]["resourceVersion"] = str(self._revision)
        if key in self._objects:
            self._objects[key].history.append(copy.deepcopy(obj))
        else:
            self._objects[key] = copy.deepcopy(obj)
        await self._buses[key[0]].put({"type": event, "object": copy.deepcopy(obj)})
        return obj

    def _pod(self, request: kmock.Request) -> tuple[tuple, dict]:
        key = (request.resource, request.namespace, request.name)
        pod = self._current(key)
        if pod is None:
            raise _not_found(request.resource, request.name)
        return key, pod

    def _resource_of(self, obj: dict) -> tuple[kmock.resource, kmock.ResourceInfo]:
        group, _, version = obj.get("apiVersion", "").rpartition("/")
        for resource in self._resources:
            info = self._resources[resource]
            if (resource.group, resource.version, info.kind) == (group, version, obj.get("kind")):
                return resource, info
        raise ValueError(f"the stand-in serves no kind {obj.get('kind')!r} in {obj.get('apiVersion')!r}")

    @staticmethod
    def _apply_create_defaults(obj: dict, resource: kmock.resource, info: kmock.ResourceInfo, namespace: str | None):
        obj.setdefault("apiVersion", "/".join(filter(None, (resource.group, resource.version))))
        obj.setdefault("kind", info.kind)
        metadata = obj["metadata"]
        if namespace is not None:
            metadata["namespace"] = namespace
        metadata.setdefault("uid", str(uuid.uuid4()))
        metadata.setdefault("creationTimestamp", _rfc3339(_utcnow()))
        metadata.setdefault("generation", 1)

    async def _pause(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._closing.wait(), seconds)


class ClusterStandIn:
    """A Kubernetes API server for tests on a loopback port: ``with ClusterStandIn() as kube: ...``."""

    def __init__(self) -> None:
        self.url = ""
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, name="kube-api-stand-in", daemon=True)
        self._ready = threading.Event()
        self._emulator: KubeEmulator | None = None
        self._stop: asyncio.Event | None = None
        self._failure: BaseException | None = None

    def __enter__(self) -> ClusterStandIn:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def start(self) -> ClusterStandIn:
        self._thread.start()
        if not self._ready.wait(30) or self._failure is not None:
            raise RuntimeError(f"the Kubernetes API stand-in did not start: {self._failure!r}")
        return self

    def stop(self) -> None:
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(30)
        self._loop.close()
        if self._failure is not None:
            raise RuntimeError("the Kubernetes API stand-in failed") from self._failure

    def api_client(self):
        """A ``kubernetes.client.ApiClient`` for this stand-in."""
        from kubernetes import client

        configuration = client.Configuration()
        configuration.host = self.url
        return client.ApiClient(configuration)

    def kube_config(self) -> dict:
        """A kubeconfig for this stand-in, e.g. the ``kube_config`` extra of an Airflow ``kubernetes`` connection."""
        return {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "stand-in", "cluster": {"server": self.url}}],
            "users": [{"name": "stand-in", "user": {"token": "stand-in"}}],
            "contexts": [{"name": "stand-in", "context": {"cluster": "stand-in", "user": "stand-in"}}],
            "current-context": "stand-in",
        }

    def put(self, obj: dict) -> dict:
        """Seed ``obj`` (apiVersion, kind, metadata.name; namespace ``default`` when left out) without HTTP."""
        return self._in_loop(self._emulator.seed, obj)

    def get(self, plural: str, name: str, namespace: str | None = None) -> dict | None:
        found = [obj for obj in self.list(plural, namespace) if obj["metadata"]["name"] == name]
        return found[0] if found else None

    def list(self, plural: str, namespace: str | None = None) -> list[dict]:
        return self._in_loop(self._emulator.stored, plural, namespace)

    @property
    def requests(self) -> list[SeenRequest]:
        """Every request seen so far, in order."""
        return self._in_loop(lambda: self._emulator.seen)

    def hold_rollout(self, name: str) -> None:
        """Keep the deployments called ``name``, existing or created later, unready (readyReplicas 0)."""
        self._in_loop(self._emulator.hold_rollout, name)

    def hold_route_acceptance(self, name: str) -> None:
        """The Gateway controller no longer reports the HTTPRoutes called ``name`` Accepted after a write (their
        status keeps the generation it last accepted)."""
        self._in_loop(self._emulator.hold_route_acceptance, name)

    def complete_rollout(self, name: str) -> None:
        """Make the current spec of the held deployments called ``name`` ready; a later spec change is held again."""
        self._in_loop(self._emulator.complete_rollout, name)

    def on_pod(self, hook: Callable[[dict], PodScript | None]) -> None:
        """Pods created from now on: once their containers run, ``hook(pod)`` is called in a worker thread, and the
        containers (the xcom sidecar excepted) keep running until it returns; they then end as the PodScript it
        returns says (its ``run_s`` unused). A hook that returns None leaves the pod to the scripts. The latest hook
        is asked first."""
        self._in_loop(self._emulator.on_pod, hook)

    def serve_pod_log(self, namespace: str, name: str,
                      read: Callable[[], str | list[tuple[datetime.datetime, str]]]) -> None:
        """The log of the pod ``namespace/name`` that no kubelet runs (one seeded with ``put``) is ``read()``, called
        in a worker thread on each request: text, every line carrying the time of the request, or (time, line)
        pairs, each line written at its own time (``sinceSeconds`` and ``timestamps`` honour it)."""
        self._in_loop(self._emulator.serve_pod_log, namespace, name, read)

    def delete(self, plural: str, name: str, namespace: str | None = None) -> bool:
        """Delete an object without HTTP (watchers see DELETED); False when there was none."""
        return self._in_loop(self._emulator.delete, plural, name, namespace)

    def script_pod(self, match: str, exit_code: int = 0, log: str = "", result: Any = None, run_s: float = 0.2):
        """Pods created from now on whose name starts with ``match`` or with an image equal to it: after ``run_s``
        their containers (the xcom sidecar excepted) end with ``exit_code`` having printed ``log``; the sidecar's
        ``return.json`` holds ``result`` (None: no file). The latest fitting script wins."""
        self._in_loop(self._emulator.script_pod, PodScript(match, exit_code, log, result, run_s))

    def fail_next(self, method: str, path_contains: str, status: int, times: int = 1, body: dict | None = None):
        """Answer the next ``times`` matching requests with ``status`` and a Kubernetes Status body (or ``body``)."""
        self._in_loop(self._emulator.inject, _Fault(method, path_contains, times, status=status, body=body))

    def stall_next(self, method: str, path_contains: str, seconds: float, times: int = 1) -> None:
        """Hold the next ``times`` matching requests for ``seconds`` before serving them."""
        self._in_loop(self._emulator.inject, _Fault(method, path_contains, times, stall_s=seconds))

    def answer_late(self, method: str, path_contains: str, seconds: float) -> None:
        """Apply the next matching request at once but send its answer ``seconds`` later: a client that gave up
        before then retries a write the API already made."""
        self._in_loop(self._emulator.inject, _Fault(method, path_contains, 1, answer_late_s=seconds))

    def _in_loop(self, function, *args):
        async def call():
            result = function(*args)
            return await result if inspect.isawaitable(result) else result

        return asyncio.run_coroutine_threadsafe(call(), self._loop).result(timeout=30)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_until_complete(self._serve())
        except BaseException as exc:  # reported by start() or stop()
            self._failure = exc
            self._ready.set()

    async def _serve(self) -> None:
        self._stop = asyncio.Event()
        async with KubeEmulator() as emulator, kmock.Server(emulator) as server:
            self._emulator, self.url = emulator, str(server.url).rstrip("/")
            self._ready.set()
            await self._stop.wait()
            await emulator.close()


def merge_patch(target: Any, patch: Any, *, by_name: bool = False) -> Any:
    """RFC 7386 JSON merge patch; ``by_name`` also merges lists of named items by name, as a strategic patch does."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    merged = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            merged.pop(key, None)
        elif by_name and _named_items(value) and _named_items(merged.get(key)):
            by_item_name = {item["name"]: item for item in merged[key]}
            for item in value:
                by_item_name[item["name"]] = merge_patch(by_item_name.get(item["name"]), item, by_name=True)
            merged[key] = list(by_item_name.values())
        else:
            merged[key] = merge_patch(merged.get(key), value, by_name=by_name)
    return merged


def _named_items(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(item, dict) and "name" in item for item in value)


def _patched(request: kmock.Request, current: dict) -> dict:
    content_type = request._raw_request.headers.get("Content-Type", "").split(";")[0].strip()
    if content_type == "application/json-patch+json":
        try:
            return jsonpatch.apply_patch(current, request.data)
        except (jsonpatch.JsonPatchException, jsonpatch.JsonPointerException) as exc:
            raise _api_error(422, "Invalid", f"the JSON patch cannot be applied: {exc}") from exc
    if content_type == "application/merge-patch+json":
        return merge_patch(current, _body_dict(request))
    if content_type == "application/strategic-merge-patch+json" and request.resource.group not in _CUSTOM_GROUPS:
        return merge_patch(current, _body_dict(request), by_name=True)
    raise _api_error(415, "UnsupportedMediaType", f"the body of the request was in an unknown format: {content_type}")


def _check_precondition(body: Any, current: dict, key: tuple) -> None:
    wanted = body.get("metadata", {}).get("resourceVersion") if isinstance(body, dict) else None
    if wanted and wanted != current["metadata"]["resourceVersion"]:
        raise _api_error(409, "Conflict", f'Operation cannot be fulfilled on {_qualified(key[0])} "{key[2]}": the '
                         "object has been modified; please apply your changes to the latest version and try again",
                         name=key[2], group=key[0].group, kind=key[0].plural)


def _deployment_status(deployment: dict, *, held: bool) -> dict:
    replicas = deployment.get("spec", {}).get("replicas", 1)
    ready = 0 if held else replicas
    available = ready == replicas
    status = {
        "observedGeneration": deployment["metadata"]["generation"],
        "replicas": replicas, "updatedReplicas": replicas, "readyReplicas": ready, "availableReplicas": ready,
        "conditions": [
            {"type": "Available", "status": str(available),
             "reason": "MinimumReplicasAvailable" if available else "MinimumReplicasUnavailable"},
            {"type": "Progressing", "status": "True",
             "reason": "NewReplicaSetAvailable" if available else "ReplicaSetUpdated"},
        ],
    }
    if not available:
        status["unavailableReplicas"] = replicas - ready
    return status


def _phase(states: list[dict]) -> str:
    if any("waiting" in state for state in states):
        return "Pending"
    if any("running" in state for state in states):
        return "Running"
    return "Succeeded" if all(state["terminated"]["exitCode"] == 0 for state in states) else "Failed"


def _selector(request: kmock.Request):
    """The request's namespace, name, labelSelector and fieldSelector as one predicate over objects."""
    labels = [_label_requirement(term.strip())
              for term in re.findall(r"(?:[^,(]|\([^)]*\))+", request.params.get("labelSelector", ""))]
    fields = [_field_requirement(term.strip()) for term in request.params.get("fieldSelector", "").split(",") if term]

    def selects(obj: dict) -> bool:
        metadata = obj.get("metadata", {})
        return ((request.namespace is None or metadata.get("namespace") == request.namespace)
                and (request.name is None or metadata.get("name") == request.name)
                and all(requirement(metadata.get("labels") or {}) for requirement in labels)
                and all(requirement(obj) for requirement in fields))

    return selects


def _label_requirement(term: str) -> _LabelRequirement:
    if match := _SET_TERM.fullmatch(term):
        values = frozenset(value.strip() for value in match["values"].split(","))
        return _LabelRequirement(match["key"], match["op"], values)
    if match := _EQUALITY_TERM.fullmatch(term):
        return _LabelRequirement(match["key"], "notin" if match["op"] == "!=" else "in", frozenset({match["value"]}))
    if match := _EXISTS_TERM.fullmatch(term):
        return _LabelRequirement(match["key"], "!exists" if match["negated"] else "exists")
    raise _api_error(400, "BadRequest", f"unable to parse requirement: {term!r}")


def _field_requirement(term: str) -> _FieldRequirement:
    match = _FIELD_TERM.fullmatch(term)
    if match is None:
        raise _api_error(400, "BadRequest", f"invalid field selector: {term!r}")
    return _FieldRequirement(tuple(match["path"].split(".")), match["value"], match["op"] != "!=")


def _container_name(request: kmock.Request, pod: dict) -> str:
    names = [container["name"] for container in pod["spec"].get("containers", [])]
    name = request.params.get("container") or (names[0] if len(names) == 1 else None)
    if name is None:
        raise _api_error(400, "BadRequest", f"a container name must be specified for pod {request.name}, choose one "
                         f"of: {names}")
    if name not in names:
        raise _api_error(400, "BadRequest", f"container {name} is not valid for pod {request.name}")
    return name


async def _read_stdin(socket: aiohttp.web.WebSocketResponse) -> str:
    """The first frame the client writes on channel 0 (stdin), without the channel byte."""
    try:
        message = await socket.receive(timeout=5)
    except TimeoutError:
        return ""
    if message.type == aiohttp.WSMsgType.TEXT:
        return message.data[1:]
    return message.data[1:].decode() if message.type == aiohttp.WSMsgType.BINARY else ""


def _body_dict(request: kmock.Request) -> dict:
    if not isinstance(request.data, dict):
        raise _api_error(400, "BadRequest", "the request body must be a JSON object")
    return request.data


def _qualified(resource: kmock.resource) -> str:
    return f"{resource.plural}.{resource.group}" if resource.group else resource.plural


def _not_found(resource: kmock.resource, name: str) -> kmock.KubernetesError:
    return _api_error(404, "NotFound", f'{_qualified(resource)} "{name}" not found', name=name,
                      group=resource.group, kind=resource.plural)


def _api_error(code: int, reason: str, message: str, **details: str) -> kmock.KubernetesError:
    return kmock.KubernetesError(status=code, reason=reason, message=message, details=details)


def _status_body(code: int, reason: str | None, message: str | None, details: Any = None) -> dict:
    return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": message,
            "reason": reason, "details": details or {}, "code": code}


def _json_line(event: dict) -> bytes:
    return json.dumps(event).encode() + b"\n"


def _utcnow() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def _rfc3339(moment: datetime.datetime, *, fraction: bool = False) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ" if fraction else "%Y-%m-%dT%H:%M:%SZ")
