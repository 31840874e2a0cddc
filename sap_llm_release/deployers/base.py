"""The deployer interface: put a colour of the service up, tell when it is ready, take it out."""

from __future__ import annotations

from typing import Literal, Protocol

Colour = Literal["blue", "green"]


class DeployError(RuntimeError):
    """A deployment could not be created, read or removed."""


class Deployer(Protocol):
    def deploy(self, colour: Colour, version: str) -> bool:
        """Run ``version`` as ``colour``; nothing changes when it already runs. True when something changed."""

    def wait_ready(self, colour: Colour, timeout_s: float) -> tuple[bool, str]:
        """Wait until ``colour`` answers ready; ``(ready, what was seen)``."""

    def remove(self, colour: Colour) -> bool:
        """Take ``colour`` out; True when something was running."""

    def running_version(self, colour: Colour) -> str | None:
        """The version ``colour`` runs now, or None."""

    def logs(self, colour: Colour) -> str:
        """The service log of ``colour``."""
