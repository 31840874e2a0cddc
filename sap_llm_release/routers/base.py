"""The traffic router interface: read the live blue/green split, set a new one."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


class RouterError(RuntimeError):
    """The router could not be read or changed; the message names the router object."""


@dataclass(frozen=True)
class Weights:
    """Percent of requests for blue and for green; they always add up to 100."""

    blue: int
    green: int

    def __post_init__(self) -> None:
        for name, value in (("blue", self.blue), ("green", self.green)):
            if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 100:
                raise ValueError(f"weights.{name}: must be an integer from 0 to 100, got {value!r}")
        if self.blue + self.green != 100:
            raise ValueError(f"weights: blue + green must be 100, got {self.blue} + {self.green}")

    @classmethod
    def green_percent(cls, green: int) -> Weights:
        return cls(100 - green, green)

    def as_tuple(self) -> tuple[int, int]:
        return (self.blue, self.green)

    def __str__(self) -> str:
        return f"blue {self.blue}% / green {self.green}%"


ALL_BLUE = Weights(100, 0)


class Router(Protocol):
    def get_weights(self) -> Weights:
        """The split the router applies now, read from the live object."""

    def set_weights(self, weights: Weights) -> bool:
        """Apply ``weights``; write only when the live split differs. True when something changed, and only once the
        live router is seen serving it (or its controller acknowledged it); RouterError naming the wanted and the
        live state when that does not happen within the router's bound."""

    def describe(self) -> str:
        """A short name of the routed object for logs and the ledger."""
