"""Print each subgraph's SDL (as ``_service { sdl }`` serves it) as the composer's input JSON."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from engagement.schema import schema as engagement
from identity.schema import schema as identity
from rewards.schema import schema as rewards

PORTS = {"identity": 8001, "engagement": 8002, "rewards": 8003}


async def subgraphs() -> list[dict[str, Any]]:
    """Name, default local URL and SDL of every subgraph."""
    found = []
    for name, schema in (("identity", identity), ("engagement", engagement), ("rewards", rewards)):
        result = await schema.execute("{ _service { sdl } }")
        assert result.data is not None, result.errors
        found.append(
            {
                "name": name,
                "url": f"http://127.0.0.1:{PORTS[name]}/graphql",
                "sdl": result.data["_service"]["sdl"],
            }
        )
    return found


if __name__ == "__main__":
    print(json.dumps({"subgraphs": asyncio.run(subgraphs())}))
