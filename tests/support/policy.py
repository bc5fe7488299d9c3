"""Helpers that set a school's moderation policy over the real API.

Delivery tests send bursts far beyond what a pupil or a parent may send in a
minute; they raise the school's rate limits first, through the same policy
API a director uses, instead of bypassing moderation.
"""

from __future__ import annotations

import aiohttp

ROLES = ("pupil", "parent", "teacher", "staff", "director")
GENEROUS = {"capacity": 100_000, "per_minute": 100_000}


async def relax_rate_limits(
    http: aiohttp.ClientSession, url: str, operator_token: str, uai: str = "9999999D"
) -> None:
    """Revise the school's policy so that no bucket limits a test's burst."""
    headers = {"Authorization": f"Bearer {operator_token}"}
    async with http.get(f"{url}/v1/schools/{uai}/policy", headers=headers) as response:
        assert response.status == 200, await response.text()
        current = await response.json()
    version = current["policy"]["version"]
    policy = {
        "version": version + 1,
        "rate_limits": {
            "person": {role: GENEROUS for role in ROLES},
            "role": {role: GENEROUS for role in ROLES},
            "school": GENEROUS,
        },
    }
    async with http.put(f"{url}/v1/schools/{uai}/policy", json=policy, headers=headers) as response:
        assert response.status == 200, await response.text()
