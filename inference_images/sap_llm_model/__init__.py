"""The SAP_LLM model package shared by the inference images: the document taxonomy and ADC schema, the synthetic
labelled document generator, and the model code (``modeling``, ``pipeline``: torch + transformers, imported only
inside the images' own environments)."""
