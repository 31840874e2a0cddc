"""The SAP_LLM model code of the inference images (``modeling``, ``pipeline``: torch + transformers, imported only
inside the images' own environments). The service contract it serves lives in ``sap_llm_contract``."""
