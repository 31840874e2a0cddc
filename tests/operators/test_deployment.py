"""The deployment description writes the chart's values and refuses stale ones."""

from __future__ import annotations

import yaml

from operators import deployment


def test_check_fails_on_stale_values_and_writing_mends_them(tmp_path, monkeypatch):
    monkeypatch.setattr(deployment, "VALUES_FILE", tmp_path / "helm" / "airflow-values.yaml")
    assert deployment.main([]) == 0 and deployment.main(["--check"]) == 0
    deployment.VALUES_FILE.write_text(deployment.VALUES_FILE.read_text().replace("CeleryExecutor", "LocalExecutor"))
    assert deployment.main(["--check"]) == 1


def test_every_connection_comes_from_the_connections_secret():
    values = yaml.safe_load(deployment.values_text())
    assert {entry["secretName"] for entry in values["secret"]} == {"sap-llm-airflow-connections"}
    assert [entry["secretKey"] for entry in values["secret"]][:2] == ["sap_llm_ledger", "sap_llm_prometheus"]
    assert values["config"]["triggerer"]["capacity"] == str(deployment.TRIGGERER_CAPACITY)
