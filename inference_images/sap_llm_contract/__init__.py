"""SAP_LLM's service contract, shared by the inference images and the release: the document taxonomy (types, PO
subtypes, fields, routes and S/4HANA APIs), the ADC JSON schema every answer must satisfy, and the synthetic
labelled documents that exercise it. Pure Python: no torch, no transformers."""
