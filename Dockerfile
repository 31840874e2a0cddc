# Airflow with the sap-llm-release project installed (the triggerer must import operators.triggers).
FROM apache/airflow:3.3.2-python3.11
USER root
RUN apt-get update -qq && apt-get install -y -qq --no-install-recommends nginx-light && rm -rf /var/lib/apt/lists/*
USER airflow
WORKDIR /opt/sap-llm-release
COPY --chown=airflow:root pyproject.toml constraints.txt ./
COPY --chown=airflow:root sap_llm_release ./sap_llm_release
COPY --chown=airflow:root operators ./operators
COPY --chown=airflow:root sql ./sql
COPY --chown=airflow:root specs ./specs
COPY --chown=airflow:root stack ./stack
COPY --chown=airflow:root inference_images ./inference_images
RUN pip install --no-cache-dir -c constraints.txt -e .
