"""Backing services' Airflow connections become the URLs their clients take: MongoDB's and the TinkerPop provider's
Gremlin connection types, credentials percent-encoded, ``extra.url`` winning over the fields."""

from __future__ import annotations

import json
import types
from urllib.parse import unquote, urlsplit

import pytest
from pymongo.uri_parser import parse_uri

from operators.runtime import ConfiguredServices, ReleaseRun, connection_url
from sap_llm_release.checks.base import CheckContext
from sap_llm_release.checks.services import ServicePing, ServicePingParams
from sap_llm_release.evidence import Threshold, Verdict
from tests.support.mongo_standin import MongoStandIn
from tests.support.runs import SPEC_FILE, release_conf


def connection(monkeypatch, conn_id: str, **fields) -> str:
    monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(fields))
    return connection_url(conn_id)


@pytest.mark.parametrize(
    ("fields", "url"),
    [
        ({"host": "kb.internal"}, "mongodb://kb.internal:27017/"),
        (
            {"host": "kb.internal", "port": 27018, "login": "kb", "password": "p@ss:w/rd", "schema": "knowledge"},
            "mongodb://kb:p%40ss%3Aw%2Frd@kb.internal:27018/knowledge",
        ),
        (
            {"host": "kb.example.mongodb.net", "port": 27017, "login": "kb", "password": "pw", "extra": {"srv": True}},
            "mongodb+srv://kb:pw@kb.example.mongodb.net/",
        ),
    ],
)
def test_a_mongo_connection_is_a_url_pymongo_reads(monkeypatch, fields, url):
    built = connection(monkeypatch, "test_mongo", conn_type="mongo", **fields)
    assert built == url
    if not built.startswith("mongodb+srv"):  # parsing an SRV URL looks its name up in DNS
        parsed = parse_uri(built)
        assert (parsed["username"], parsed["password"]) == (fields.get("login"), fields.get("password"))


def test_a_cosmos_gremlin_connection_names_the_graph_and_encodes_the_key(monkeypatch):
    key = "k3y+with/base64=="
    built = connection(
        monkeypatch,
        "test_gremlin",
        conn_type="gremlin",
        host="pmg.gremlin.cosmos.azure.com",
        login="kb",
        schema="pmg",
        password=key,
    )
    parts = urlsplit(built)
    assert (parts.scheme, parts.hostname, parts.port, parts.path) == ("wss", "pmg.gremlin.cosmos.azure.com", 443, "/")
    assert (unquote(parts.username), unquote(parts.password)) == ("/dbs/kb/colls/pmg", key)


def test_extra_url_wins_over_the_fields(monkeypatch):
    url = "ws://%2Fdbs%2Fkb%2Fcolls%2Fpmg:key@localhost:8182/gremlin"
    assert connection(monkeypatch, "test_gremlin_url", conn_type="gremlin", host="ignored", extra={"url": url}) == url


def test_a_mongodb_connection_is_what_the_service_ping_asks(monkeypatch):
    with MongoStandIn() as mongo:
        monkeypatch.setenv(
            "AIRFLOW_CONN_SAP_LLM_MONGODB",
            json.dumps({"conn_type": "mongo", "host": "127.0.0.1", "port": mongo.port, "schema": "kb"}),
        )
        services = ConfiguredServices()
        evidence = ServicePing().run(
            ServicePingParams(service="mongodb", timeout_s=1),
            Threshold(op="==", value=1),
            CheckContext(service="sap-llm", services=services),
        )
    assert services["mongodb"] == f"mongodb://127.0.0.1:{mongo.port}/kb"
    assert (evidence.verdict, evidence.measured) == (Verdict.PASSED, 1), evidence.detail


def test_a_store_connection_is_what_the_store_gates_query(monkeypatch, tmp_path):
    from sap_llm_release.checks.stores import StoreQuery, StoreQueryParams
    from sap_llm_release.rehearsal.stores import build

    stores = build(tmp_path, history=10, test_documents=10)
    monkeypatch.setenv("AIRFLOW_CONN_SAP_LLM_KNOWLEDGE_BASE",
                       json.dumps({"conn_type": "sqlite", "host": str(stores["knowledge_base"])}))
    services = ConfiguredServices()
    evidence = StoreQuery().run(StoreQueryParams(store="knowledge_base", sql="SELECT count(*) FROM apis"),
                                Threshold(op=">=", value=1), CheckContext(service="sap-llm", services=services))
    assert services["knowledge_base"] == f"sqlite:///{stores['knowledge_base']}"
    assert evidence.verdict is Verdict.PASSED and evidence.measured > 1


def test_a_services_connection_replaces_the_targets_url_and_is_looked_up_only_when_asked(monkeypatch):
    import operators.runtime as runtime

    looked_up = []
    monkeypatch.setattr(runtime, "connection_url", lambda conn_id: looked_up.append(conn_id) or connection_url(conn_id))
    monkeypatch.setenv("AIRFLOW_CONN_SAP_LLM_REDIS", json.dumps({"conn_type": "redis", "host": "cache.internal"}))
    services = ConfiguredServices({"redis": "redis://127.0.0.1:6379/0", "loki": "http://127.0.0.1:3100"})

    assert services["loki"] == "http://127.0.0.1:3100" and services.get("mongodb") is None
    assert looked_up == ["sap_llm_loki", "sap_llm_mongodb"]  # one lookup per service asked for, none for the rest
    assert services["redis"] == services.get("redis") == "redis://cache.internal:6379/0"
    assert looked_up.count("sap_llm_redis") == 1
    assert dict(services) == {"redis": "redis://cache.internal:6379/0", "loki": "http://127.0.0.1:3100"}
    with pytest.raises(KeyError):
        services["no_such_service"]


def test_postgres_and_redis_passwords_are_percent_encoded(monkeypatch):
    postgres = connection(monkeypatch, "test_pg", conn_type="postgres", host="db", login="kb", password="a@b:c/d",
                          schema="knowledge")
    assert postgres == "postgresql+psycopg://kb:a%40b%3Ac%2Fd@db:5432/knowledge"
    redis = connection(monkeypatch, "test_redis", conn_type="redis", host="cache", password="p@ss")
    assert redis == "redis://:p%40ss@cache:6379/0"


def test_prometheus_replicas_come_from_the_connection_else_from_the_target(monkeypatch):
    from operators.runtime import prometheus_replicas

    target = types.SimpleNamespace(prometheus_replicas=["http://local-1:9090", "http://local-2:9090"])
    monkeypatch.setenv("AIRFLOW_CONN_SAP_LLM_PROMETHEUS", json.dumps({"conn_type": "http", "host": "prom"}))
    assert prometheus_replicas(target) == target.prometheus_replicas
    replicas = ["http://prometheus-0.prometheus:9090", "http://prometheus-1.prometheus:9090"]
    monkeypatch.setenv("AIRFLOW_CONN_SAP_LLM_PROMETHEUS",
                       json.dumps({"conn_type": "http", "host": "prom", "extra": {"replicas": replicas}}))
    assert prometheus_replicas(target) == replicas


@pytest.mark.parametrize(("fields", "expected"), [
    ({"host": "prom", "port": 9090}, {"url": "http://prom:9090"}),
    ({"host": "prom.internal", "schema": "https", "login": "release", "password": "s3cret",
      "extra": {"ca_file": "/etc/sap-llm/ca.pem"}},
     {"url": "https://prom.internal", "ca_file": "/etc/sap-llm/ca.pem", "username": "release", "password": "s3cret"}),
    ({"host": "prom.internal", "schema": "https", "password": "t0ken"},
     {"url": "https://prom.internal", "bearer_token": "t0ken"}),
])
def test_prometheus_access_comes_from_its_connection(monkeypatch, fields, expected):
    from operators.runtime import prometheus_access

    monkeypatch.setenv("AIRFLOW_CONN_TEST_PROMETHEUS", json.dumps({"conn_type": "http", **fields}))
    assert prometheus_access("test_prometheus").to_dict() == expected


def test_green_queries_carry_each_slos_severe_and_counts_queries_rendered_for_green(monkeypatch):
    monkeypatch.setattr(ReleaseRun, "blue_slot", property(lambda self: "blue"))
    run = ReleaseRun(context={"params": release_conf()}, spec_path=str(SPEC_FILE))
    queries = {query.name: query for query in run.green_slo_queries()}
    error_rate, latency = queries["error_rate"], queries["p95_latency"]
    assert error_rate.counts_bad_promql == (
        'sum(increase(sap_llm_requests_total{job="sap-llm",colour="green",status=~"5.."}[10s])) or vector(0)')
    assert error_rate.counts_events_promql == 'sum(increase(sap_llm_requests_total{job="sap-llm",colour="green"}[10s]))'
    assert (error_rate.counts_share, error_rate.counts_confidence, error_rate.severe_min_events) == (0.01, 0.99, 8)
    assert "[3s]" in error_rate.severe_events_promql and "[3s]" in error_rate.severe_promql
    assert 'le="1.5"' in latency.counts_bad_promql and latency.counts_share == 0.05
    assert (queries["throughput"].counts_bad_promql, queries["green_scraped"].counts_bad_promql) == ("", "")
