"""The SAP_LLM validator image: weights verification, model evaluation, model smoke test and GPU benchmark, each a
subcommand that writes one result JSON (``python -m sap_llm_validator --help``)."""
