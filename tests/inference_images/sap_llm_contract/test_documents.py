"""Synthetic labelled documents: every type and PO subtype, spans that point at the values, seeded."""

from __future__ import annotations

import json

import pytest
from sap_llm_contract.documents import main, synthetic_documents
from sap_llm_contract.taxonomy import DOCUMENT_TYPES, PO_SUBTYPES, route_and_api


def test_taxonomy_sizes():
    assert len(DOCUMENT_TYPES) == 15 and len(PO_SUBTYPES) == 35
    assert len({t.heading for t in DOCUMENT_TYPES.values()}) == 15
    assert len({s.code for s in PO_SUBTYPES.values()}) == 35


def test_140_documents_cover_every_type_and_every_subtype_twice():
    documents = list(synthetic_documents(140, seed=3, split="test"))
    types = {d["document_type"] for d in documents}
    subtypes = [d["po_subtype"] for d in documents if d["po_subtype"]]
    assert types == set(DOCUMENT_TYPES)
    assert {s: subtypes.count(s) for s in PO_SUBTYPES} == dict.fromkeys(PO_SUBTYPES, 2)
    assert all((d["po_subtype"] is None) == (d["document_type"] != "purchase_order") for d in documents)
    assert len({d["document_id"] for d in documents}) == 140


def test_labels_match_the_content():
    for document in synthetic_documents(60, seed=1):
        entry = DOCUMENT_TYPES[document["document_type"]]
        assert document["content"].splitlines()[0] == entry.heading
        assert set(document["fields"]) == set(entry.fields)
        for name, (start, end) in document["spans"].items():
            assert document["content"][start:end] == document["fields"][name]
        assert (document["route"], document["api"]) == route_and_api(document["document_type"],
                                                                      document["po_subtype"])
        if document["po_subtype"]:
            assert f"Order Type: {PO_SUBTYPES[document['po_subtype']].code} " in document["content"]


def test_splits_use_separate_party_names():
    def parties(split):
        return {d["fields"][f] for d in synthetic_documents(280, seed=0, split=split)
                for f in ("vendor", "customer", "employee") if f in d["fields"]}

    assert parties("train").isdisjoint(parties("heldout"))
    assert parties("test").isdisjoint(parties("train"))


def test_deterministic_per_seed_and_split():
    assert list(synthetic_documents(20, seed=7)) == list(synthetic_documents(20, seed=7))
    assert list(synthetic_documents(20, seed=7)) != list(synthetic_documents(20, seed=8))
    assert list(synthetic_documents(0)) == []
    with pytest.raises(ValueError, match="split: must be one of"):
        next(synthetic_documents(1, split="validation"))


def test_cli_writes_json_lines(tmp_path):
    main(["--count", "5", "--seed", "2", "--split", "heldout", "--out", str(tmp_path / "d.jsonl")])
    lines = (tmp_path / "d.jsonl").read_text().splitlines()
    assert [json.loads(line)["document_id"] for line in lines] == [f"heldout-2-{i:05d}" for i in range(5)]
