"""The thin Airflow layer over the sap_llm_release core: operators, the SLO sensor and its trigger."""
