"""The rehearsal's knowledge base and process memory graph: SQLite files with the stores' schemas
(``stack/stores/*.sql``), filled from SAP_LLM's own taxonomy, ADC schema and synthetic document generator, so the
data gates query real stores on the local stack. Business rules and transformations are tested here, against
generated documents, and their outcomes recorded as a store records them.

    python -m sap_llm_release.rehearsal.stores --dir .models/rehearsal/stores [--history 100000]
"""

from __future__ import annotations

import argparse
import hashlib
import math
import sqlite3
import struct
from collections.abc import Iterable
from contextlib import closing
from datetime import datetime, timezone
from pathlib import Path

from jsonschema import Draft202012Validator
from sap_llm_contract.documents import synthetic_documents
from sap_llm_contract.schema import adc_schema, field_schema, normalise_field
from sap_llm_contract.taxonomy import APIS, DOCUMENT_TYPES, FIELDS, PO_SUBTYPES

SCHEMAS = Path(__file__).resolve().parents[2] / "stack" / "stores"
STORES = ("knowledge_base", "process_memory_graph")
EMBEDDING_DIMENSIONS = 64
PARTY_FIELDS = ("vendor", "customer", "employee")


def build(directory: Path, history: int = 100_000, test_documents: int = 600) -> dict[str, Path]:
    """Write both stores into ``directory`` (replacing earlier ones); return their paths by store name."""
    directory.mkdir(parents=True, exist_ok=True)
    paths = {store: directory / f"{store}.sqlite" for store in STORES}
    now = datetime.now(timezone.utc).isoformat(timespec="seconds")
    samples = list(synthetic_documents(test_documents, seed=11, split="test"))
    with closing(_fresh(paths["knowledge_base"])) as db:
        _fill_knowledge_base(db, samples, now)
    with closing(_fresh(paths["process_memory_graph"])) as db:
        _fill_process_memory_graph(db, synthetic_documents(history, seed=12, split="train"), now)
    return paths


def _fresh(path: Path) -> sqlite3.Connection:
    path.unlink(missing_ok=True)
    db = sqlite3.connect(path)
    db.executescript((SCHEMAS / f"{path.stem}.sql").read_text())
    return db


def _property(field: str) -> str:
    return "".join(part.title() for part in field.split("_"))


def _apis_of(document_type: str) -> set[str]:
    if document_type == "purchase_order":
        return {subtype.api for subtype in PO_SUBTYPES.values()} | {DOCUMENT_TYPES[document_type].api}
    return {DOCUMENT_TYPES[document_type].api}


def _fill_knowledge_base(db: sqlite3.Connection, samples: list[dict], now: str) -> None:
    posted_by = {api: sorted(t for t in DOCUMENT_TYPES if api in _apis_of(t)) for api in APIS}
    db.executemany("INSERT INTO apis VALUES (?, 'S/4HANA', ?)",
                   [(api, f"OData service posting {', '.join(types)} documents") for api, types in posted_by.items()])
    mappings = [(t, field, api, _property(field)) for t, entry in DOCUMENT_TYPES.items() for field in entry.fields
                for api in sorted(_apis_of(t))]
    db.executemany("INSERT INTO field_mappings VALUES (?, ?, ?, ?)", mappings)
    db.executemany("INSERT OR IGNORE INTO api_properties VALUES (?, ?)", [(api, p) for _, _, api, p in mappings])
    db.executemany("INSERT INTO business_rules VALUES (?, ?, ?, ?, ?)",
                   [(*rule, now) for rule in _test_business_rules(samples)])
    db.executemany("INSERT INTO transformations VALUES (?, ?, ?, ?, ?)",
                   [(*verified, now) for verified in _verify_transformations(samples)])
    db.commit()


def _adc(document: dict) -> dict:
    return {"document_type": document["document_type"], "po_subtype": document["po_subtype"],
            "fields": {name: normalise_field(name, value) for name, value in document["fields"].items()},
            "route": document["route"], "api": document["api"]}


def _test_business_rules(samples: list[dict]) -> Iterable[tuple]:
    """One rule per document type (its required fields, its PO subtype, its route and API; the ADC schema's rules):
    it passes when every sample of the type is accepted and the same sample missing a required field is refused."""
    validator = Draft202012Validator(adc_schema())
    for document_type, entry in DOCUMENT_TYPES.items():
        cases = [_adc(document) for document in samples if document["document_type"] == document_type]
        accepted = all(validator.is_valid(case) for case in cases)
        refused = all(not validator.is_valid({**case, "fields": _without_first(case["fields"])}) for case in cases)
        apis = ", ".join(sorted(_apis_of(document_type)))
        rule = f"{document_type} requires {', '.join(entry.fields)}; posted by {apis}"
        yield f"adc_{document_type}", rule, len(cases), int(bool(cases) and accepted and refused)


def _without_first(fields: dict) -> dict:
    return dict(list(fields.items())[1:])


def _verify_transformations(samples: list[dict]) -> Iterable[tuple]:
    """One normalisation per field (printed text -> the ADC's typed value), verified on every sample value."""
    for field in FIELDS:
        validator = Draft202012Validator(field_schema(field))
        values = [document["fields"][field] for document in samples if field in document["fields"]]
        passed = all(validator.is_valid(normalise_field(field, value)) for value in values)
        yield f"normalise_{field}", f"printed {field} -> ADC value", len(values), int(bool(values) and passed)


def _embedding(text: str) -> bytes:
    """A hashed bag-of-words vector, L2-normalised: the rehearsal's stand-in for the vision encoder's embedding."""
    vector = [0.0] * EMBEDDING_DIMENSIONS
    for token in text.lower().split():
        digest = hashlib.blake2b(token.encode(), digest_size=8).digest()
        vector[digest[0] % EMBEDDING_DIMENSIONS] += 1.0 if digest[1] & 1 else -1.0
    norm = math.sqrt(sum(x * x for x in vector)) or 1.0
    return struct.pack(f"{EMBEDDING_DIMENSIONS}f", *(x / norm for x in vector))


def _fill_process_memory_graph(db: sqlite3.Connection, history: Iterable[dict], now: str) -> None:
    documents, embeddings, relationships, last_of_partner = [], [], [], {}
    for number, document in enumerate(history, start=1):
        partner = next((document["fields"][f] for f in PARTY_FIELDS if f in document["fields"]), "unknown")
        sha256 = hashlib.sha256(document["content"].encode()).hexdigest()
        documents.append((number, sha256, document["document_type"], partner, document["api"], now))
        embeddings.append((number, EMBEDDING_DIMENSIONS, _embedding(document["content"])))
        if partner in last_of_partner:
            relationships.append((last_of_partner[partner], number, "same_partner_next"))
        last_of_partner[partner] = number
    db.executemany("INSERT INTO documents VALUES (?, ?, ?, ?, ?, ?)", documents)
    db.executemany("INSERT INTO embeddings VALUES (?, ?, ?)", embeddings)
    db.executemany("INSERT INTO relationships VALUES (?, ?, ?)", relationships)
    db.commit()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Build the rehearsal's knowledge base and process memory graph.")
    parser.add_argument("--dir", type=Path, required=True)
    parser.add_argument("--history", type=int, default=100_000, help="documents in the process memory graph")
    args = parser.parse_args(argv)
    for store, path in build(args.dir, args.history).items():
        print(f"{store}: {path}")


if __name__ == "__main__":
    main()
