"""The reference SAP_LLM server module, imported from its file (it is an image's program, not a package)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

SERVER_SCRIPT = Path(__file__).resolve().parents[2] / "inference_images" / "sap_llm_server" / "server.py"


def load_server_module():
    module_spec = importlib.util.spec_from_file_location("sap_llm_reference_server", SERVER_SCRIPT)
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    return module
