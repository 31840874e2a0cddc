"""store_query: one read-only SQL value (or its p95 latency) from a data store, on SQLite files and on PostgreSQL.
The spec's own knowledge-base queries are run against stores built with the stores' schemas."""

from __future__ import annotations

import socket
import sqlite3
import threading
import time
from pathlib import Path

import pytest
from pydantic import ValidationError
from sqlalchemy import create_engine, make_url, text

from sap_llm_release.checks.base import CheckContext, CheckUnavailable
from sap_llm_release.checks.stores import StoreQuery, StoreQueryParams
from sap_llm_release.evidence import Threshold, Verdict
from sap_llm_release.rehearsal.stores import SCHEMAS, build
from sap_llm_release.spec import load_spec

ROOT = Path(__file__).resolve().parents[3]
SPEC = load_spec(ROOT / "specs" / "sap_llm.yaml")
AT_LEAST_ONE = Threshold(op=">=", value=1)


def spec_params(gate: str) -> tuple[StoreQueryParams, Threshold]:
    found = next(g for g in SPEC.gates if g.name == gate)
    return found.check_params, found.threshold


def run(url: str | None, store: str = "knowledge_base", sql: str = "SELECT count(*) FROM apis",
        threshold: Threshold = AT_LEAST_ONE, **params):
    context = CheckContext(service="sap-llm", services={store: url} if url else {})
    return StoreQuery().run(StoreQueryParams(store=store, sql=sql, **params), threshold, context)


@pytest.fixture
def knowledge_base(tmp_path) -> Path:
    """A small knowledge base: two documented APIs, mappings onto their properties, tested rules."""
    path = tmp_path / "knowledge_base.sqlite"
    with sqlite3.connect(path) as db:
        db.executescript((SCHEMAS / "knowledge_base.sql").read_text())
        db.executescript("""
            INSERT INTO apis VALUES ('API_SALES_ORDER_SRV', 'S/4HANA', 'sales orders'),
                                    ('API_SUPPLIERINVOICE_PROCESS_SRV', 'S/4HANA', 'supplier invoices');
            INSERT INTO api_properties VALUES ('API_SALES_ORDER_SRV', 'Customer'),
                                              ('API_SUPPLIERINVOICE_PROCESS_SRV', 'Vendor');
            INSERT INTO field_mappings VALUES
                ('sales_order', 'customer', 'API_SALES_ORDER_SRV', 'Customer'),
                ('supplier_invoice', 'vendor', 'API_SUPPLIERINVOICE_PROCESS_SRV', 'Vendor');
            INSERT INTO business_rules VALUES ('adc_sales_order', 'requires customer', 10, 1, '2026-11-27');
        """)
    db.close()
    return path


def url_of(path: Path) -> str:
    return f"sqlite:///{path}"


def test_a_count_meets_its_threshold_and_names_the_store_and_query(knowledge_base):
    evidence = run(url_of(knowledge_base))
    assert (evidence.verdict, evidence.measured) == (Verdict.PASSED, 2)
    assert evidence.detail == "knowledge_base: SELECT count(*) FROM apis"
    assert evidence.evidence_uri == url_of(knowledge_base)


def test_a_count_below_its_threshold_fails(knowledge_base):
    evidence = run(url_of(knowledge_base), threshold=Threshold(op=">=", value=400))
    assert (evidence.verdict, evidence.measured, evidence.threshold) == (Verdict.FAILED, 2, ">= 400")


@pytest.mark.parametrize("gate", ["knowledge_base_s4hana_apis_documented", "knowledge_base_field_mappings_validated",
                                  "knowledge_base_business_rules_tested"])
def test_the_specs_ratio_queries_pass_on_a_sound_store(knowledge_base, gate):
    params, threshold = spec_params(gate)
    evidence = StoreQuery().run(params, threshold, CheckContext(service="s", services={params.store:
                                                                                       url_of(knowledge_base)}))
    assert (evidence.verdict, evidence.measured) == (Verdict.PASSED, 1.0)


@pytest.mark.parametrize(("gate", "damage"), [
    ("knowledge_base_s4hana_apis_documented", "UPDATE apis SET documentation = ' ' WHERE name LIKE 'API_SALES%'"),
    ("knowledge_base_field_mappings_validated", "DELETE FROM api_properties WHERE property = 'Vendor'"),
    ("knowledge_base_field_mappings_validated", "DELETE FROM apis WHERE name = 'API_SALES_ORDER_SRV'"),
    ("knowledge_base_business_rules_tested", "INSERT INTO business_rules VALUES ('untested', 'r', NULL, NULL, NULL)"),
    ("knowledge_base_business_rules_tested", "UPDATE business_rules SET last_test_passed = 0"),
])
def test_the_specs_ratio_queries_fail_on_a_damaged_store(knowledge_base, gate, damage):
    with sqlite3.connect(knowledge_base) as db:
        db.execute(damage)
    db.close()
    params, threshold = spec_params(gate)
    evidence = StoreQuery().run(params, threshold, CheckContext(service="s", services={params.store:
                                                                                       url_of(knowledge_base)}))
    assert evidence.verdict is Verdict.FAILED and evidence.measured < 1.0


@pytest.mark.parametrize("gate", ["knowledge_base_s4hana_apis_documented", "knowledge_base_field_mappings_validated",
                                  "knowledge_base_business_rules_tested", "knowledge_base_transformations_verified",
                                  "process_memory_graph_embeddings", "process_memory_graph_relationships"])
def test_an_empty_store_fails_every_ratio_gate_instead_of_passing_on_nothing(tmp_path, gate):
    params, threshold = spec_params(gate)
    path = tmp_path / f"{params.store}.sqlite"
    with sqlite3.connect(path) as db:
        db.executescript((SCHEMAS / f"{params.store}.sql").read_text())
    db.close()
    evidence = StoreQuery().run(params, threshold, CheckContext(service="s", services={params.store: url_of(path)}))
    assert (evidence.verdict, evidence.measured) == (Verdict.FAILED, None)
    assert "answered None, not a number" in evidence.detail


def test_the_rehearsal_stores_pass_every_store_gate_of_the_spec(tmp_path):
    """The builder's stores (100 history documents here) against the spec's queries: the ratios and the latency
    hold; the counts are what was built."""
    stores = {store: url_of(path) for store, path in build(tmp_path, history=100, test_documents=120).items()}
    rehearsal = SPEC.profile("rehearsal")
    for gate in (g for g in SPEC.gates if g.kind == "store_query"):
        scaled = rehearsal.scaled_threshold_for(gate.name)
        threshold = scaled.threshold if scaled else gate.threshold
        evidence = StoreQuery().run(gate.check_params, threshold, CheckContext(service="s", services=stores))
        if gate.name == "process_memory_graph_documents":
            assert (evidence.verdict, evidence.measured) == (Verdict.FAILED, 100)
        else:
            assert evidence.verdict is Verdict.PASSED, evidence.describe(gate.name)


def test_a_missing_store_file_fails_and_is_not_created(tmp_path):
    missing = tmp_path / "nowhere.sqlite"
    evidence = run(url_of(missing))
    assert (evidence.verdict, evidence.measured) == (Verdict.FAILED, None)
    assert "knowledge_base query failed: unable to open database file" in evidence.detail
    assert not missing.exists()


def test_a_store_without_the_table_fails_with_the_reason(tmp_path):
    path = tmp_path / "empty.sqlite"
    sqlite3.connect(path).close()
    evidence = run(url_of(path))
    assert evidence.verdict is Verdict.FAILED and "no such table: apis" in evidence.detail


@pytest.mark.parametrize(("sql", "answer"), [("SELECT 'many'", "'many'"), ("SELECT 1 WHERE 0", "None"),
                                             ("SELECT NULL", "None")])
def test_an_answer_that_is_not_a_number_fails(knowledge_base, sql, answer):
    evidence = run(url_of(knowledge_base), sql=sql)
    assert (evidence.verdict, evidence.measured) == (Verdict.FAILED, None)
    assert f"answered {answer}, not a number" in evidence.detail


def test_a_not_configured_store_cannot_be_checked():
    with pytest.raises(CheckUnavailable, match="no process_memory_graph store is configured"):
        run(None, store="process_memory_graph")


@pytest.mark.parametrize("sql", ["DELETE FROM apis", "SELECT 1; DELETE FROM apis", "update apis set product = 'x'"])
def test_a_statement_that_is_not_one_select_is_refused_by_name(sql):
    with pytest.raises(ValidationError, match=r"sql\n.*must be a single SELECT"):
        StoreQueryParams(store="knowledge_base", sql=sql)


def test_a_writing_query_disguised_as_a_select_is_refused_by_the_store_and_changes_nothing(knowledge_base):
    evidence = run(url_of(knowledge_base), sql="WITH gone AS (SELECT 1) DELETE FROM apis")
    assert evidence.verdict is Verdict.FAILED and "readonly database" in evidence.detail
    with sqlite3.connect(knowledge_base) as db:
        assert db.execute("SELECT count(*) FROM apis").fetchone() == (2,)
    db.close()


def test_p95_latency_is_measured_over_the_runs(knowledge_base):
    evidence = run(url_of(knowledge_base), measure="p95_ms", repeat=10, threshold=Threshold(op="<=", value=500))
    assert evidence.verdict is Verdict.PASSED and 0 < evidence.measured < 500
    assert evidence.detail.startswith("knowledge_base: 10 runs, median ") and "(last answer 2)" in evidence.detail


def test_p95_latency_over_the_threshold_fails(knowledge_base):
    slow = "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 300000) SELECT count(*) FROM n"
    evidence = run(url_of(knowledge_base), sql=slow, measure="p95_ms", repeat=5,
                   threshold=Threshold(op="<=", value=0.001))
    assert evidence.verdict is Verdict.FAILED and evidence.measured > 0.001


@pytest.fixture(scope="module")
def postgres_store(postgres_url):
    """The knowledge base schema in a database of its own on the test PostgreSQL server."""
    admin = create_engine(postgres_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text("DROP DATABASE IF EXISTS knowledge_base_test"))
        connection.execute(text("CREATE DATABASE knowledge_base_test"))
    admin.dispose()
    url = make_url(postgres_url).set(database="knowledge_base_test").render_as_string(hide_password=False)
    engine = create_engine(url)
    with engine.begin() as connection:
        connection.exec_driver_sql((SCHEMAS / "knowledge_base.sql").read_text())
        connection.exec_driver_sql("INSERT INTO apis VALUES ('API_SALES_ORDER_SRV', 'S/4HANA', 'sales orders')")
        connection.exec_driver_sql("INSERT INTO api_properties VALUES ('API_SALES_ORDER_SRV', 'Customer')")
        connection.exec_driver_sql(
            "INSERT INTO field_mappings VALUES ('sales_order', 'customer', 'API_SALES_ORDER_SRV', 'Customer')")
        connection.exec_driver_sql("INSERT INTO business_rules VALUES ('r', 'rule', 3, 1, '2026-11-27')")
    engine.dispose()
    return url


@pytest.mark.parametrize("gate", ["knowledge_base_apis", "knowledge_base_s4hana_apis_documented",
                                  "knowledge_base_field_mappings_validated", "knowledge_base_business_rules_tested"])
def test_the_specs_queries_run_on_postgresql_too(postgres_store, gate):
    params, threshold = spec_params(gate)
    evidence = StoreQuery().run(params, AT_LEAST_ONE,
                                CheckContext(service="s", services={params.store: postgres_store}))
    assert (evidence.verdict, evidence.measured) == (Verdict.PASSED, 1), evidence.detail
    assert isinstance(evidence.measured, int | float)


def test_postgresql_sessions_are_read_only(postgres_store):
    evidence = run(postgres_store, sql="WITH gone AS (DELETE FROM apis RETURNING 1) SELECT count(*) FROM gone")
    assert evidence.verdict is Verdict.FAILED and "read-only transaction" in evidence.detail
    assert run(postgres_store).measured == 1


def test_a_slow_postgresql_query_is_cut_at_the_timeout(postgres_store):
    started = time.monotonic()
    evidence = run(postgres_store, sql="SELECT count(*) FROM pg_sleep(5)", timeout_s=1)
    assert evidence.verdict is Verdict.FAILED and "statement timeout" in evidence.detail
    assert time.monotonic() - started < 4


def test_a_postgresql_server_that_never_answers_fails_at_the_timeout():
    server = socket.create_server(("127.0.0.1", 0))
    accepted = []
    threading.Thread(target=lambda: accepted.append(server.accept()), daemon=True).start()
    started = time.monotonic()
    evidence = run(f"postgresql+psycopg://u:secret@127.0.0.1:{server.getsockname()[1]}/kb", timeout_s=1)
    assert (evidence.verdict, evidence.measured) == (Verdict.FAILED, None)
    assert time.monotonic() - started < 5
    assert "secret" not in evidence.detail + evidence.evidence_uri
    server.close()


def test_nothing_listening_fails_with_the_reason(free_port):
    evidence = run(f"postgresql+psycopg://u:secret@127.0.0.1:{free_port}/kb", timeout_s=1)
    assert evidence.verdict is Verdict.FAILED and "query failed" in evidence.detail
    assert evidence.evidence_uri == f"postgresql+psycopg://u:***@127.0.0.1:{free_port}/kb"
