"""Term: one named memory component on one device, with its formula, source and uncertainty band."""

from __future__ import annotations

from dataclasses import dataclass

# Where a term lives in the allocator hierarchy (SCENARIO.md): `allocated` tensors count toward
# max_memory_allocated; `reserved` only toward the caching allocator's reserve; `device` only toward nvidia-smi.
ALLOCATED = "allocated"
RESERVED = "reserved"
DEVICE = "device"
HOST = "host"  # host RAM (CPU offload); reported as host_bytes, never in a device total


@dataclass(frozen=True)
class Term:
    """A memory component: `bytes` on device `device`, bracketed by [low, high] where the model is uncertain."""

    name: str
    bytes: int
    formula: str
    source: str
    level: str = ALLOCATED
    device: int = 0
    low: int | None = None
    high: int | None = None

    @property
    def low_bytes(self) -> int:
        return self.bytes if self.low is None else self.low

    @property
    def high_bytes(self) -> int:
        return self.bytes if self.high is None else self.high

    def on(self, device: int) -> Term:
        """The same term placed on another device index."""
        return Term(self.name, self.bytes, self.formula, self.source, self.level, device, self.low, self.high)

    def to_dict(self) -> dict:
        return {"name": self.name, "bytes": self.bytes, "device": self.device, "level": self.level,
                "low_bytes": self.low_bytes, "high_bytes": self.high_bytes, "formula": self.formula,
                "source": self.source}

