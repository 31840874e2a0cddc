"""The ADC (Adaptive Document Contract) JSON schema every SAP_LLM output must satisfy, built from the taxonomy:
the document type and PO subtype from their closed lists, the fields each type requires with their formats, and
the route and API from theirs."""

from __future__ import annotations

from functools import lru_cache

from sap_llm_contract.taxonomy import APIS, COUNTRIES, CURRENCIES, DOCUMENT_TYPES, FIELDS, PO_SUBTYPES, ROUTES

_DOCUMENT_NUMBER = {"type": "string", "pattern": r"^[0-9]{10}$"}
_DATE = {"type": "string", "pattern": r"^20[0-9]{2}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])$"}
_AMOUNT = {"type": "number", "minimum": 0}
_PARTY = {"type": "string", "minLength": 2, "maxLength": 80, "pattern": r"^[A-Za-z][A-Za-z .&-]*[A-Za-z.]$"}


def field_schema(name: str) -> dict:
    """The JSON schema of one extracted field's value."""
    if name.endswith(("_number", "_reference")) or name == "account":
        return _DOCUMENT_NUMBER
    if name.endswith("_date") or name == "valid_until":
        return _DATE
    if name in ("total", "closing_balance"):
        return _AMOUNT
    if name == "currency":
        return {"type": "string", "enum": list(CURRENCIES)}
    if name == "country":
        return {"type": "string", "enum": list(COUNTRIES)}
    if name == "quantity":
        return {"type": "integer", "minimum": 1}
    return _PARTY


def _per_type_rules() -> list[dict]:
    rules = []
    for name, entry in DOCUMENT_TYPES.items():
        subtype = {"enum": list(PO_SUBTYPES)} if name == "purchase_order" else {"type": "null"}
        rules.append({
            "if": {"properties": {"document_type": {"const": name}}},
            "then": {"properties": {
                "po_subtype": subtype,
                "fields": {"required": list(entry.fields), "propertyNames": {"enum": list(entry.fields)}},
            }},
        })
    return rules


@lru_cache(maxsize=1)
def adc_schema() -> dict:
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "SAP_LLM ADC output",
        "type": "object",
        "required": ["document_type", "po_subtype", "fields", "route", "api"],
        "additionalProperties": False,
        "properties": {
            "document_type": {"enum": list(DOCUMENT_TYPES)},
            "po_subtype": {"enum": [*PO_SUBTYPES, None]},
            "fields": {"type": "object", "properties": {name: field_schema(name) for name in FIELDS}},
            "route": {"enum": list(ROUTES)},
            "api": {"enum": list(APIS)},
        },
        "allOf": _per_type_rules(),
    }


def normalise_field(name: str, raw: str) -> object:
    """A raw extracted string turned into the typed value the schema wants; left as it is when it does not parse
    (the schema then rejects it)."""
    text = raw.strip()
    try:
        if name in ("total", "closing_balance"):
            return float(text.replace(",", ""))
        if name == "quantity":
            return int(text)
    except ValueError:
        return text
    return text
