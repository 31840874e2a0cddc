-- SAP_LLM's knowledge base as the release gates read it: the SAP APIs it posts to with their documentation and
-- entity properties, how each extracted field maps onto an API property, and the business rules and transformation
-- functions with the outcome of their last test run.
CREATE TABLE apis (
    name TEXT PRIMARY KEY,
    product TEXT NOT NULL,
    documentation TEXT
);
CREATE TABLE api_properties (
    api TEXT NOT NULL REFERENCES apis (name),
    property TEXT NOT NULL,
    PRIMARY KEY (api, property)
);
CREATE TABLE field_mappings (
    document_type TEXT NOT NULL,
    field TEXT NOT NULL,
    api TEXT NOT NULL,
    property TEXT NOT NULL,
    PRIMARY KEY (document_type, field, api)
);
CREATE TABLE business_rules (
    name TEXT PRIMARY KEY,
    rule TEXT NOT NULL,
    cases_tested INTEGER,
    last_test_passed INTEGER,  -- 1 passed, 0 failed, NULL never tested
    last_tested_at TEXT
);
CREATE TABLE transformations (
    name TEXT PRIMARY KEY,
    description TEXT NOT NULL,
    cases_verified INTEGER,
    last_verification_passed INTEGER,  -- 1 passed, 0 failed, NULL never verified
    last_verified_at TEXT
);
