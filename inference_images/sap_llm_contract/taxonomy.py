"""What SAP_LLM reads and produces: 15 business document types (the heading printed on each and the fields a
complete extraction has), 35 purchase-order subtypes, and where each document goes (route) and which S/4HANA API
posts it. One source for the generator, the ADC schema, the models' label sets and the reference server."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class DocumentType:
    heading: str
    fields: tuple[str, ...]
    route: str
    api: str


@dataclass(frozen=True)
class PurchaseOrderSubtype:
    code: str
    title: str
    route: str
    api: str


_PO_API = "API_PURCHASEORDER_PROCESS_SRV"

DOCUMENT_TYPES: dict[str, DocumentType] = {
    "purchase_order": DocumentType("PURCHASE ORDER", ("po_number", "vendor", "total", "currency"), "procurement",
                                   _PO_API),
    "supplier_invoice": DocumentType("SUPPLIER INVOICE", ("invoice_number", "vendor", "total", "currency"),
                                     "accounts_payable", "API_SUPPLIERINVOICE_PROCESS_SRV"),
    "sales_order": DocumentType("SALES ORDER", ("order_number", "customer", "total", "currency"), "sales",
                                "API_SALES_ORDER_SRV"),
    "delivery_note": DocumentType("DELIVERY NOTE", ("delivery_number", "customer", "ship_date"), "logistics",
                                  "API_OUTBOUND_DELIVERY_SRV"),
    "goods_receipt": DocumentType("GOODS RECEIPT", ("receipt_number", "po_number", "quantity"), "logistics",
                                  "API_MATERIAL_DOCUMENT_SRV"),
    "credit_memo": DocumentType("CREDIT MEMO", ("memo_number", "customer", "total", "currency"),
                                "accounts_receivable", "API_CREDIT_MEMO_REQUEST_SRV"),
    "debit_memo": DocumentType("DEBIT MEMO", ("memo_number", "vendor", "total", "currency"), "accounts_payable",
                               "API_DEBIT_MEMO_REQUEST_SRV"),
    "quotation": DocumentType("QUOTATION", ("quote_number", "customer", "valid_until"), "sales",
                              "API_SALES_QUOTATION_SRV"),
    "order_confirmation": DocumentType("ORDER CONFIRMATION", ("order_number", "vendor", "ship_date"), "procurement",
                                       "API_PURCHASEORDER_CONFIRMATION_SRV"),
    "payment_advice": DocumentType("PAYMENT ADVICE", ("payment_reference", "vendor", "total", "currency"),
                                   "treasury", "API_PAYMENT_ADVICE_SRV"),
    "bank_statement": DocumentType("BANK STATEMENT", ("account", "statement_date", "closing_balance"), "treasury",
                                   "API_BANK_STATEMENT_SRV"),
    "contract": DocumentType("CONTRACT", ("contract_number", "vendor", "valid_until"), "procurement",
                             "API_PURCHASECONTRACT_PROCESS_SRV"),
    "shipping_notice": DocumentType("ADVANCE SHIPPING NOTICE", ("asn_number", "vendor", "ship_date"), "logistics",
                                    "API_INBOUND_DELIVERY_SRV"),
    "customs_declaration": DocumentType("CUSTOMS DECLARATION", ("declaration_number", "country", "total",
                                                                "currency"), "trade_compliance",
                                        "API_CUSTOMS_DECLARATION_SRV"),
    "expense_report": DocumentType("EXPENSE REPORT", ("report_number", "employee", "total", "currency"),
                                   "accounts_payable", "API_JOURNALENTRYITEMBASIC_SRV"),
}

PO_SUBTYPES: dict[str, PurchaseOrderSubtype] = {
    name: PurchaseOrderSubtype(code, title, route, api)
    for name, code, title, route, api in (
        ("standard", "NB", "Standard", "procurement", _PO_API),
        ("framework", "FO", "Framework Order", "procurement", _PO_API),
        ("consignment", "KB", "Consignment", "inventory", _PO_API),
        ("subcontracting", "LU", "Subcontracting", "production", _PO_API),
        ("third_party", "DB", "Third Party", "sales", _PO_API),
        ("stock_transfer", "UB", "Stock Transfer", "logistics", "API_STOCK_TRANSPORT_ORDER_SRV"),
        ("service", "DL", "Service", "procurement", "API_SERVICE_ENTRY_SHEET_SRV"),
        ("limit", "LM", "Limit Order", "procurement", _PO_API),
        ("blanket", "BL", "Blanket Order", "procurement", _PO_API),
        ("contract_release", "KA", "Contract Release", "procurement", "API_PURCHASECONTRACT_PROCESS_SRV"),
        ("scheduling_agreement", "LP", "Scheduling Agreement", "logistics", "API_SCHED_AGRMT_PROCESS_SRV"),
        ("emergency", "EM", "Emergency", "expedite", _PO_API),
        ("capex", "CX", "Capital Expenditure", "asset_accounting", _PO_API),
        ("opex", "OX", "Operating Expenditure", "procurement", _PO_API),
        ("intercompany", "IC", "Intercompany", "intercompany", "API_INTERCOMPANY_PO_SRV"),
        ("returns", "RE", "Returns", "logistics", "API_RETURNS_PO_SRV"),
        ("drop_ship", "DS", "Drop Shipment", "sales", _PO_API),
        ("kanban", "KN", "Kanban", "production", _PO_API),
        ("vendor_managed", "VM", "Vendor Managed Inventory", "inventory", _PO_API),
        ("catalog", "CA", "Catalog", "procurement", _PO_API),
        ("maintenance", "MR", "Maintenance Repair", "plant_maintenance", _PO_API),
        ("project", "PR", "Project", "project_accounting", _PO_API),
        ("consumables", "CS", "Consumables", "procurement", _PO_API),
        ("raw_material", "RM", "Raw Material", "production", _PO_API),
        ("import", "IM", "Import", "trade_compliance", _PO_API),
        ("export", "EX", "Export", "trade_compliance", _PO_API),
        ("free_of_charge", "FC", "Free Of Charge", "inventory", _PO_API),
        ("milestone", "MS", "Milestone Billing", "project_accounting", _PO_API),
        ("recurring", "RC", "Recurring", "procurement", _PO_API),
        ("rush", "RU", "Rush Order", "expedite", _PO_API),
        ("sample", "SA", "Sample", "procurement", _PO_API),
        ("rental", "RT", "Rental", "asset_accounting", _PO_API),
        ("lease", "LS", "Lease", "asset_accounting", "API_LEASE_CONTRACT_SRV"),
        ("tooling", "TL", "Tooling", "production", _PO_API),
        ("energy", "EN", "Energy", "utilities", _PO_API),
    )
}

# The fields every document type can carry, in one order (the models' tag set is built from it).
FIELDS: tuple[str, ...] = tuple(sorted({f for document_type in DOCUMENT_TYPES.values() for f in document_type.fields}))
ROUTES: tuple[str, ...] = tuple(sorted({t.route for t in DOCUMENT_TYPES.values()} | {s.route for s in
                                                                                     PO_SUBTYPES.values()}))
APIS: tuple[str, ...] = tuple(sorted({t.api for t in DOCUMENT_TYPES.values()} | {s.api for s in PO_SUBTYPES.values()}))
CURRENCIES = ("CHF", "EUR", "GBP", "USD")
# Upper bounds of the vision encoder's confidence histogram: the server exports production's and the validator's
# evaluation counts the test set's in the same bins, which the monthly audit's confidence drift compares.
CONFIDENCE_BUCKETS = (0.5, 0.7, 0.8, 0.9, 0.95, 0.98, 0.99, 0.995, 0.999, 1.0)
COUNTRIES = ("DE", "FR", "IN", "US")


def route_and_api(document_type: str, po_subtype: str | None) -> tuple[str, str]:
    """Where a document goes and the API that posts it: a purchase order's subtype decides, else its type."""
    if document_type == "purchase_order" and po_subtype:
        subtype = PO_SUBTYPES[po_subtype]
        return subtype.route, subtype.api
    entry = DOCUMENT_TYPES[document_type]
    return entry.route, entry.api


def heading_to_type() -> dict[str, str]:
    return {entry.heading: name for name, entry in DOCUMENT_TYPES.items()}
