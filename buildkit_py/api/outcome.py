"""What a build returns to its caller, whichever builder ran it (in-process, one daemon,
several nodes): the image id, the exporters' metadata (``--metadata-file``), how many
steps ran and were cached, and the warnings to show."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# The progress log stream that carries a warning (BuildKit's VertexWarning as JSON)
# instead of output; displays print it as "#N WARN: ...".
WARNING_STREAM = 3


@dataclass
class BuildOutcome:
    image_id: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    ran: int = 0
    cached: int = 0
    warnings: list[str] = field(default_factory=list)
