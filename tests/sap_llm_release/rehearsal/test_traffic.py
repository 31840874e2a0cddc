"""The rehearsal stack's traffic source: documents at its rate to a real server, answers counted by status and
upstream; a router that does not answer is counted as errors, and the source goes on."""

from __future__ import annotations

from sap_llm_release.rehearsal.traffic import run


def test_documents_are_posted_at_the_rate_and_counted_by_answer(reference_server):
    counts = run(reference_server, rps=20, duration_s=1.0, workers=2)
    assert set(counts) == {"200/-"}  # the reference server answers itself: no router's X-Upstream
    assert 15 <= counts["200/-"] <= 22


def test_a_router_that_does_not_answer_is_counted_and_the_source_goes_on(free_port):
    counts = run(f"http://127.0.0.1:{free_port}", rps=10, duration_s=0.5, workers=1)
    assert set(counts) == {"error/ConnectionRefusedError"} and counts["error/ConnectionRefusedError"] >= 4
