"""Synthetic, labelled SAP business documents: all 15 document types and all 35 purchase-order subtypes, with
their fields, route and API. Seeded and deterministic. Half of every stream are purchase orders (as in SAP
inboxes), cycling through the subtypes; the other half cycle through the other 14 types.

Splits draw party names from separate pools, so a model evaluated on ``heldout`` meets names it never saw::

    python -m sap_llm_contract.documents --count 700 --seed 1 --split train --out train.jsonl
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path

from sap_llm_contract.taxonomy import COUNTRIES, CURRENCIES, DOCUMENT_TYPES, PO_SUBTYPES, route_and_api

SPLITS = ("train", "test", "heldout")
_PARTIES = {
    "train": ("Acme GmbH", "Nordwind AG", "Blue Lake Ltd", "Kaiser Logistik", "Orbis SA", "Helix Corp",
              "Rhein Chemie", "Alpen Foods", "Solaris Energy", "Vega Motors", "Meridian Steel", "Atlas Textil"),
    "test": ("Polar Systems", "Granite Works", "Lumen Optics", "Tandem Freight", "Cobalt Labs", "Iris Pharma"),
    "heldout": ("Boreal Mining", "Cedar Print", "Delta Marine", "Ember Retail", "Fjord Seafood", "Quasar Tech"),
}
_NOISE = ("Page 1 of 1", "Thank you for your business.", "Please quote our reference in all correspondence.",
          "Terms: net 30 days", "Registered office: Walldorf", "This document was generated electronically.")
_OTHER_TYPES = [name for name in DOCUMENT_TYPES if name != "purchase_order"]


def field_value(name: str, rng: random.Random, split: str = "train") -> str:
    """A plausible value for a field, as printed on the document."""
    if name.endswith(("_number", "_reference")) or name == "account":
        return f"{rng.randint(4500000000, 4599999999)}"
    if name in ("total", "closing_balance"):
        return f"{rng.uniform(10, 250000):.2f}"
    if name == "currency":
        return rng.choice(CURRENCIES)
    if name.endswith("_date") or name == "valid_until":
        return f"2026-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"
    if name == "quantity":
        return str(rng.randint(1, 5000))
    if name == "country":
        return rng.choice(COUNTRIES)
    return rng.choice(_PARTIES[split])


def _label(name: str) -> str:
    return name.replace("po_", "PO_").replace("asn_", "ASN_").replace("_", " ").title().replace("Po ", "PO ") \
        .replace("Asn ", "ASN ")


def render(document_type: str, po_subtype: str | None, fields: dict[str, str],
           rng: random.Random) -> tuple[str, dict[str, list[int]]]:
    """The document's text (heading, the PO order type line, one ``Label: value`` line per field in a shuffled
    order, some boilerplate) and each field value's character span in it."""
    text = DOCUMENT_TYPES[document_type].heading
    if po_subtype:
        subtype = PO_SUBTYPES[po_subtype]
        text += f"\nOrder Type: {subtype.code} {subtype.title}"
    items = list(fields.items())
    rng.shuffle(items)
    spans = {}
    for name, value in items:
        text += f"\n{_label(name)}: "
        spans[name] = [len(text), len(text) + len(value)]
        text += value
    for line in rng.sample(_NOISE, rng.randint(0, 2)):
        text += "\n" + line
    return text, spans


def synthetic_documents(count: int, seed: int = 0, split: str = "train") -> Iterator[dict]:
    """``count`` labelled documents: ``document_id``, ``document_type``, ``po_subtype``, ``fields``, ``spans``
    (each field value's character span in ``content``), ``route``, ``api``, ``content``."""
    if split not in SPLITS:
        raise ValueError(f"split: must be one of {SPLITS}, got {split!r}")
    rng = random.Random(f"{split}:{seed}")
    subtypes = list(PO_SUBTYPES)
    for index in range(count):
        if index % 2 == 0:
            document_type, po_subtype = "purchase_order", subtypes[(index // 2) % len(subtypes)]
        else:
            document_type, po_subtype = _OTHER_TYPES[(index // 2) % len(_OTHER_TYPES)], None
        fields = {name: field_value(name, rng, split) for name in DOCUMENT_TYPES[document_type].fields}
        route, api = route_and_api(document_type, po_subtype)
        content, spans = render(document_type, po_subtype, fields, rng)
        yield {
            "document_id": f"{split}-{seed}-{index:05d}",
            "document_type": document_type,
            "po_subtype": po_subtype,
            "fields": fields,
            "spans": spans,
            "route": route,
            "api": api,
            "content": content,
        }


def write_jsonl(path: Path, documents: Iterator[dict]) -> int:
    count = 0
    with path.open("w") as out:
        for document in documents:
            out.write(json.dumps(document) + "\n")
            count += 1
    return count


def manifest_entry(document: dict, split: str, source: str, created_at: str) -> dict:
    """A dataset manifest line: the document's content hash, its split and where it came from."""
    return {
        "document_id": document["document_id"],
        "sha256": hashlib.sha256(document["content"].encode()).hexdigest(),
        "split": split,
        "source": source,
        "labelled_by": "generator (labels exact by construction)",
        "created_at": created_at,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Write synthetic labelled SAP documents as JSON lines.")
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--split", choices=SPLITS, default="train")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--manifest", type=Path, help="append each document's manifest line (hash, split, "
                                                        "provenance) to this dataset manifest")
    args = parser.parse_args(argv)
    documents = list(synthetic_documents(args.count, args.seed, args.split))
    write_jsonl(args.out, iter(documents))
    if args.manifest:
        source = f"synthetic: sap_llm_contract.documents --seed {args.seed} --split {args.split}"
        created_at = datetime.now(timezone.utc).isoformat()
        with args.manifest.open("a") as out:
            for document in documents:
                out.write(json.dumps(manifest_entry(document, args.split, source, created_at)) + "\n")


if __name__ == "__main__":
    main()
