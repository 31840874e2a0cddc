"""PromQL templates: ``$name`` placeholders (PromQL's own braces stay as they are)."""

from __future__ import annotations

from string import Template


def require_known_variables(template: str, known: set[str]) -> str:
    """Return ``template``; raise ValueError naming any placeholder outside ``known``."""
    unknown = set(Template(template).get_identifiers()) - known
    if unknown:
        raise ValueError(f"unknown template variables {sorted(unknown)}; use {sorted(known)}")
    return template


def render(template: str, **variables: str) -> str:
    return Template(template).substitute(variables)
