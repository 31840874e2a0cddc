"""Green's readiness asked directly: a probe of the window, and the check right before each shift."""

from __future__ import annotations

import asyncio

from fastapi import FastAPI, Response

from sap_llm_release.analysis.readiness import ReadinessProbe, green_ready_to_shift, probe_session, readiness_url


class StandInDeployer:
    """Green's platform as the deployer interface reports it: ready or not, with what was seen."""

    def __init__(self, ready: bool, seen: str) -> None:
        self.answer = (ready, seen)
        self.asked: list[tuple[str, float]] = []

    def wait_ready(self, colour: str, timeout_s: float) -> tuple[bool, str]:
        self.asked.append((colour, timeout_s))
        return self.answer


def _not_ready_app() -> FastAPI:
    app = FastAPI()

    @app.get("/health/ready")
    async def ready(response: Response) -> dict:
        response.status_code = 503
        return {"ready": False}

    return app


def test_readiness_url_is_under_the_colours_base_url():
    assert readiness_url("http://127.0.0.1:8000/") == "http://127.0.0.1:8000/health/ready"


def test_a_ready_green_answers_one(reference_server):
    url = readiness_url(reference_server)
    assert ReadinessProbe(url).check() == (1.0, f"GET {url} -> 200")


def test_a_green_answering_not_ready_is_zero(serve_app):
    url = readiness_url(serve_app(_not_ready_app()))
    assert ReadinessProbe(url).check() == (0.0, f"GET {url} -> 503")


def test_a_green_that_does_not_answer_is_zero(free_port):
    value, seen = ReadinessProbe(f"http://127.0.0.1:{free_port}/health/ready", timeout_s=1).check()
    assert value == 0.0 and "ConnectError" in seen


def test_the_windows_async_probe_answers_as_the_blocking_one(reference_server, serve_app, free_port):
    async def probe_all(urls: list[str]) -> list[tuple[float, str]]:
        async with probe_session() as client:  # the session a window keeps open across its checks
            return [await ReadinessProbe(url, timeout_s=1, client=client).check_async() for url in urls]

    ready, not_ready = readiness_url(reference_server), readiness_url(serve_app(_not_ready_app()))
    dead = f"http://127.0.0.1:{free_port}/health/ready"
    answers = asyncio.run(probe_all([ready, not_ready, dead]))
    assert answers[:2] == [(1.0, f"GET {ready} -> 200"), (0.0, f"GET {not_ready} -> 503")]
    assert answers[2][0] == 0.0 and f"GET {dead} failed: ClientConnectorError" in answers[2][1]
    assert asyncio.run(ReadinessProbe(ready).check_async()) == (1.0, f"GET {ready} -> 200")  # a client of its own


def test_the_probe_counts_as_a_check_no_data_fails():
    slo = ReadinessProbe("http://green/health/ready").slo
    assert (slo.name, slo.op, slo.threshold, slo.no_data) == ("green_ready", "==", 1.0, "fail")


def test_a_shift_needs_green_ready_by_its_platform_and_answering(reference_server, free_port):
    ready = StandInDeployer(True, "GET /health/ready -> 200")
    assert green_ready_to_shift(ready, readiness_url(reference_server), 7) == (
        True, f"GET /health/ready -> 200; GET {readiness_url(reference_server)} -> 200")
    assert ready.asked == [("green", 7)]

    gone = StandInDeployer(False, "local green deployment is not running (killed)")
    assert green_ready_to_shift(gone, readiness_url(reference_server), 7) == (
        False, "local green deployment is not running (killed)")

    silent, seen = green_ready_to_shift(ready, f"http://127.0.0.1:{free_port}/health/ready", 7)
    assert silent is False and "ConnectError" in seen
