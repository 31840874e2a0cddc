"""Synthetic labelled documents."""

from __future__ import annotations

from sap_llm_release.documents import DOCUMENT_TYPES, synthetic_documents


def test_fifteen_document_types():
    assert len(DOCUMENT_TYPES) == 15
    headings = [heading for heading, _ in DOCUMENT_TYPES.values()]
    assert len(set(headings)) == 15


def test_cycles_through_every_type():
    documents = list(synthetic_documents(32, seed=3))
    assert len(documents) == 32
    types = list(DOCUMENT_TYPES)
    assert [document["document_type"] for document in documents] == [types[i % 15] for i in range(32)]
    assert documents[0]["document_id"] == "doc-3-00000"
    assert documents[31]["document_id"] == "doc-3-00031"
    assert len({document["document_id"] for document in documents}) == 32


def test_content_carries_heading_and_fields():
    for document in synthetic_documents(15, seed=1):
        heading, fields = DOCUMENT_TYPES[document["document_type"]]
        lines = document["content"].splitlines()
        assert lines[0] == heading
        assert tuple(document["fields"]) == fields
        for (name, value), line in zip(document["fields"].items(), lines[1:], strict=True):
            assert line == f"{name.replace('_', ' ').title()}: {value}"


def test_field_values():
    purchase_order = next(synthetic_documents(1, seed=5))
    assert purchase_order["document_type"] == "purchase_order"
    fields = purchase_order["fields"]
    assert fields["po_number"].isdigit() and len(fields["po_number"]) == 10
    assert fields["currency"] in ("EUR", "USD", "CHF")
    assert 10 <= float(fields["total"]) <= 250000


def test_deterministic_per_seed():
    assert list(synthetic_documents(20, seed=7)) == list(synthetic_documents(20, seed=7))
    first = [document["fields"] for document in synthetic_documents(20, seed=7)]
    other = [document["fields"] for document in synthetic_documents(20, seed=8)]
    assert first != other


def test_zero_documents():
    assert list(synthetic_documents(0)) == []
