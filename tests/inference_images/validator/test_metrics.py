"""The model metrics and the ADC schema check, on hand-made predictions."""

from __future__ import annotations

from sap_llm_contract.schema import adc_schema, normalise_field
from sap_llm_validator.metrics import SchemaCheck, confidence_histogram, coverage, micro_f1, per_field_f1, ratio

VALID = {"document_type": "purchase_order", "po_subtype": "capex",
         "fields": {"po_number": "4500000001", "vendor": "Acme GmbH", "total": 12.5, "currency": "EUR"},
         "route": "asset_accounting", "api": "API_PURCHASEORDER_PROCESS_SRV"}


def test_micro_f1_and_ratio():
    assert micro_f1([{("a", "1"), ("b", "2")}], [{("a", "1"), ("b", "3")}]) == 0.5
    assert micro_f1([set()], [set()]) is None
    assert ratio(3, 4) == 0.75 and ratio(0, 0) is None
    assert per_field_f1([{"a": "1"}, {}], [{"a": "1"}, {"a": "2"}]) == {"a": round(2 / 3, 6)}


def test_confidence_histogram_counts_each_bin_by_its_upper_bound():
    histogram = confidence_histogram([0.0, 0.5, 0.51, 0.9, 0.985, 0.99, 0.9985, 1.0])
    assert histogram == {"0.5": 2, "0.7": 1, "0.8": 0, "0.9": 1, "0.95": 0, "0.98": 0, "0.99": 2, "0.995": 0,
                         "0.999": 1, "1.0": 1, "+Inf": 0}
    assert sum(confidence_histogram([]).values()) == 0


def test_coverage_needs_every_class_present_and_accurate():
    result = coverage(["x", "x", "y", None], [True, True, False, True], ["x", "y", "z"], 0.95, 1)
    assert result["passed"] == 1 and result["missing"] == ["z"]
    assert result["classes"]["y"] == {"documents": 1, "accuracy": 0.0, "passed": False}


def test_valid_adc_output_passes_the_schema():
    assert SchemaCheck(adc_schema()).errors(VALID) == []


def test_schema_names_what_is_wrong():
    check = SchemaCheck(adc_schema())
    broken = {**VALID, "fields": {**VALID["fields"], "total": "12,5 EUR", "currency": "EURO"}}
    broken["fields"].pop("vendor")
    errors = check.errors(broken)
    assert any(e.startswith("fields/total") for e in errors) and any(e.startswith("fields/currency") for e in errors)
    assert check.failing_fields(broken, ["po_number", "vendor", "total", "currency"]) == ["currency", "total",
                                                                                            "vendor"]
    assert check.errors({**VALID, "po_subtype": None})  # a purchase order needs its subtype
    assert check.errors({**VALID, "document_type": "quotation"})  # a quotation has other fields
    assert check.errors({**VALID, "api": "API_MADE_UP"})


def test_normalise_field_types_values_or_leaves_them_for_the_schema_to_reject():
    assert normalise_field("total", "1,234.50") == 1234.5
    assert normalise_field("quantity", "12") == 12
    assert normalise_field("quantity", "twelve") == "twelve"
    assert normalise_field("vendor", " Acme GmbH ") == "Acme GmbH"
