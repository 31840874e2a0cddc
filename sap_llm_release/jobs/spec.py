"""An inference job as the spec names it: an image's entrypoint with arguments (``$name`` placeholders filled in
from the built-ins and the profile's ``job_inputs``). The release's jobs add the phase they run in; the audits'
jobs run before the audit's checks."""

from __future__ import annotations

from datetime import timedelta
from string import Template
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt
from pydantic.functional_validators import BeforeValidator

from sap_llm_release.durations import parse_duration
from sap_llm_release.templates import render

Duration = Annotated[timedelta, BeforeValidator(parse_duration)]


class InferenceJob(BaseModel):
    """One job: it writes one result JSON, which the gates or audit checks that name it read."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=r"^[a-z][a-z0-9_]{2,60}$")
    image: Literal["validator", "loadtest"]
    command: str = Field(pattern=r"^[a-z][a-z-]{1,30}$")
    args: list[str] = Field(default_factory=list)
    gpus: StrictInt = Field(default=0, ge=0, le=8)
    timeout: Duration = timedelta(minutes=30)

    @property
    def variables(self) -> set[str]:
        return {name for arg in self.args for name in Template(arg).get_identifiers()}

    def render_args(self, variables: dict[str, str]) -> list[str]:
        return [render(arg, **variables) for arg in self.args]
