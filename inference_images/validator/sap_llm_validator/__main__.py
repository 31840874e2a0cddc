import sys

from sap_llm_validator.cli import main

sys.exit(main())
