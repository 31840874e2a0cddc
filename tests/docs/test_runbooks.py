"""The runbooks (docs/runbooks/, checklist section 9): every alert links one that exists and every one is linked,
each has the sections an on-call engineer looks for, every PromQL snippet in them parses (promtool), and their
escalation names roles of the spec's contacts."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
import yaml

from sap_llm_release.spec import load_spec
from tests.support.runs import ROOT, SPEC_FILE

RUNBOOKS = sorted((ROOT / "docs" / "runbooks").glob("*.md"))
RULE_FILES = (ROOT / "stack" / "rules.yml", ROOT / "stack" / "slo_rules.yml")
SECTIONS = ("Symptoms", "Look at", "Diagnosis", "Remedies", "Roll back", "Escalation")
PROMQL = re.compile(r"```promql\n(.*?)\n```", re.DOTALL)


def linked() -> dict[str, str]:
    """Each alert's runbook file name."""
    return {rule["alert"]: Path(rule["annotations"]["runbook_url"]).name for path in RULE_FILES
            for group in yaml.safe_load(path.read_text())["groups"] for rule in group["rules"] if "alert" in rule}


def test_ten_runbooks_each_linked_by_an_alert_and_every_alert_links_one():
    assert len(RUNBOOKS) == 10
    links = linked()
    assert set(links.values()) == {runbook.name for runbook in RUNBOOKS}
    for path in RULE_FILES:
        for group in yaml.safe_load(path.read_text())["groups"]:
            for rule in group["rules"]:
                if "alert" in rule:
                    assert rule["annotations"]["runbook_url"].endswith(f"docs/runbooks/{links[rule['alert']]}")


@pytest.mark.parametrize("runbook", RUNBOOKS, ids=lambda path: path.stem)
def test_a_runbook_has_every_section_and_names_its_alerts(runbook):
    text = runbook.read_text()
    headings = re.findall(r"^## (.+)$", text, re.MULTILINE)
    assert headings == list(SECTIONS), headings
    for alert, name in linked().items():
        if name == runbook.name:
            assert f"`{alert}`" in text, f"{runbook.name} does not name its alert {alert}"
    assert "kubectl patch" in text or "rollback" in text


@pytest.mark.parametrize("runbook", RUNBOOKS, ids=lambda path: path.stem)
def test_a_runbooks_escalation_names_roles_of_the_spec_contacts(runbook):
    contacts = load_spec(SPEC_FILE).contacts
    escalation = runbook.read_text().partition("## Escalation\n")[2]
    roles = re.findall(r"\*\*(.+?)\*\*", escalation)
    assert roles and set(roles) <= set(contacts), set(roles) - set(contacts)


def test_every_promql_snippet_in_the_runbooks_parses(tmp_path):
    snippets = [(runbook.name, query) for runbook in RUNBOOKS for query in PROMQL.findall(runbook.read_text())]
    assert len(snippets) >= 2 * len(RUNBOOKS)
    rules = {"groups": [{"name": "runbook-snippets", "rules": [
        {"record": f"runbook_snippet_{index}", "expr": query} for index, (_, query) in enumerate(snippets)]}]}
    (tmp_path / "snippets.yml").write_text(yaml.safe_dump(rules))
    result = subprocess.run(["promtool", "check", "rules", str(tmp_path / "snippets.yml")], capture_output=True,
                            text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_would_refuse_a_broken_snippet(tmp_path):
    (tmp_path / "bad.yml").write_text(yaml.safe_dump({"groups": [{"name": "g", "rules": [
        {"record": "runbook_snippet_0", "expr": "sum(rate(x[5m])"}]}]}))
    result = subprocess.run(["promtool", "check", "rules", str(tmp_path / "bad.yml")], capture_output=True, text=True)
    assert result.returncode != 0
