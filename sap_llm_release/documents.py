"""Synthetic, labelled SAP business documents for smoke checks and the rehearsal's steady traffic."""

from __future__ import annotations

import random
from collections.abc import Iterator

# Document type -> the heading printed on it and the fields it carries.
DOCUMENT_TYPES: dict[str, tuple[str, tuple[str, ...]]] = {
    "purchase_order": ("PURCHASE ORDER", ("po_number", "vendor", "total", "currency")),
    "supplier_invoice": ("SUPPLIER INVOICE", ("invoice_number", "vendor", "total", "currency")),
    "sales_order": ("SALES ORDER", ("order_number", "customer", "total", "currency")),
    "delivery_note": ("DELIVERY NOTE", ("delivery_number", "customer", "ship_date")),
    "goods_receipt": ("GOODS RECEIPT", ("receipt_number", "po_number", "quantity")),
    "credit_memo": ("CREDIT MEMO", ("memo_number", "customer", "total", "currency")),
    "debit_memo": ("DEBIT MEMO", ("memo_number", "vendor", "total", "currency")),
    "quotation": ("QUOTATION", ("quote_number", "customer", "valid_until")),
    "order_confirmation": ("ORDER CONFIRMATION", ("order_number", "vendor", "ship_date")),
    "payment_advice": ("PAYMENT ADVICE", ("payment_reference", "vendor", "total", "currency")),
    "bank_statement": ("BANK STATEMENT", ("account", "statement_date", "closing_balance")),
    "contract": ("CONTRACT", ("contract_number", "vendor", "valid_until")),
    "shipping_notice": ("ADVANCE SHIPPING NOTICE", ("asn_number", "vendor", "ship_date")),
    "customs_declaration": ("CUSTOMS DECLARATION", ("declaration_number", "country", "total", "currency")),
    "expense_report": ("EXPENSE REPORT", ("report_number", "employee", "total", "currency")),
}

_NAMES = ("Acme GmbH", "Nordwind AG", "Blue Lake Ltd", "Kaiser Logistik", "Orbis SA", "Helix Corp")


def _field_value(name: str, rng: random.Random) -> str:
    if name.endswith(("_number", "_reference")) or name == "account":
        return f"{rng.randint(4500000000, 4599999999)}"
    if name in ("total", "closing_balance"):
        return f"{rng.uniform(10, 250000):.2f}"
    if name == "currency":
        return rng.choice(("EUR", "USD", "CHF"))
    if name.endswith("_date") or name == "valid_until":
        return f"2026-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"
    if name == "quantity":
        return str(rng.randint(1, 5000))
    if name == "country":
        return rng.choice(("DE", "FR", "US", "IN"))
    return rng.choice(_NAMES)


def synthetic_documents(count: int, seed: int = 0) -> Iterator[dict]:
    """``count`` documents cycling through all document types, deterministic for a seed."""
    rng = random.Random(seed)
    types = list(DOCUMENT_TYPES)
    for index in range(count):
        document_type = types[index % len(types)]
        heading, fields = DOCUMENT_TYPES[document_type]
        values = {name: _field_value(name, rng) for name in fields}
        lines = [heading] + [f"{name.replace('_', ' ').title()}: {value}" for name, value in values.items()]
        yield {
            "document_id": f"doc-{seed}-{index:05d}",
            "document_type": document_type,
            "fields": values,
            "content": "\n".join(lines),
        }
