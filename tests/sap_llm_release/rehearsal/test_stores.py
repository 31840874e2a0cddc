"""The rehearsal's knowledge base and process memory graph: built from the model's taxonomy and generator, rules
and transformations really tested, and handed to the local stack's target."""

from __future__ import annotations

import sqlite3
import struct

from sap_llm_contract.taxonomy import APIS, DOCUMENT_TYPES, FIELDS

from sap_llm_release.rehearsal.local_stack import REHEARSAL_STORES, _stores
from sap_llm_release.rehearsal.stores import EMBEDDING_DIMENSIONS, build


def query(path, sql: str) -> list[tuple]:
    with sqlite3.connect(path) as db:
        rows = db.execute(sql).fetchall()
    db.close()
    return rows


def test_the_knowledge_base_holds_the_models_apis_mappings_rules_and_transformations(tmp_path):
    stores = build(tmp_path, history=50, test_documents=120)
    kb = stores["knowledge_base"]
    assert query(kb, "SELECT count(*), count(DISTINCT product) FROM apis") == [(len(APIS), 1)]
    mapped = query(kb, "SELECT DISTINCT document_type, field FROM field_mappings")
    assert sorted(mapped) == sorted((t, f) for t, entry in DOCUMENT_TYPES.items() for f in entry.fields)
    rules = query(kb, "SELECT name, cases_tested, last_test_passed FROM business_rules")
    assert len(rules) == len(DOCUMENT_TYPES) and all(cases > 0 and passed == 1 for _, cases, passed in rules)
    transformations = query(kb, "SELECT name, last_verification_passed FROM transformations")
    assert sorted(name for name, _ in transformations) == sorted(f"normalise_{f}" for f in FIELDS)
    assert {passed for _, passed in transformations} == {1}


def test_a_rule_or_transformation_without_test_cases_is_not_recorded_as_passed(tmp_path):
    """Two sample documents cover a purchase order and one other type: every other rule had nothing to test."""
    kb = build(tmp_path, history=10, test_documents=2)["knowledge_base"]
    untested = query(kb, "SELECT count(*) FROM business_rules WHERE cases_tested = 0 AND last_test_passed = 0")
    assert untested == [(len(DOCUMENT_TYPES) - 2,)]
    assert query(kb, "SELECT count(*) FROM transformations WHERE last_verification_passed = 0")[0][0] > 0


def test_the_process_memory_graph_holds_documents_embeddings_and_partner_chains(tmp_path):
    pmg = build(tmp_path, history=300, test_documents=10)["process_memory_graph"]
    assert query(pmg, "SELECT count(*), count(DISTINCT sha256) FROM documents") == [(300, 300)]
    (vector,), = query(pmg, "SELECT vector FROM embeddings LIMIT 1")
    values = struct.unpack(f"{EMBEDDING_DIMENSIONS}f", vector)
    assert abs(sum(v * v for v in values) - 1.0) < 1e-4
    partners, = query(pmg, "SELECT count(DISTINCT partner) FROM documents")
    assert query(pmg, "SELECT count(*) FROM relationships") == [(300 - partners[0],)]


def test_rebuilding_replaces_the_stores(tmp_path):
    build(tmp_path, history=40, test_documents=10)
    pmg = build(tmp_path, history=20, test_documents=10)["process_memory_graph"]
    assert query(pmg, "SELECT count(*) FROM documents") == [(20,)]


def test_the_stack_hands_only_the_stores_it_finds_to_its_target(tmp_path):
    assert _stores(tmp_path / "none") == {}
    stores = build(tmp_path, history=10, test_documents=10)
    stores["process_memory_graph"].unlink()
    assert _stores(tmp_path) == {"knowledge_base": f"sqlite:///{stores['knowledge_base']}"}


def test_the_live_stacks_target_carries_the_rehearsal_stores(local_stack):
    services = local_stack.target.services
    for store in ("knowledge_base", "process_memory_graph"):
        assert services[store] == f"sqlite:///{REHEARSAL_STORES / f'{store}.sqlite'}"
