"""Fixtures of the RGPD tests: a Carnet whose scheduler loop is off (tests call
``run_once`` with the frozen clock's time), DPO tokens, and a seeded pupil."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from server.admin_actions import create_api_token
from tests.rgpd.seed import Seeded, seed_pupil
from tests.support.servers import RunningServer, running_server

OTHER_SCHOOL = "0750001A"


@pytest.fixture
async def carnet(database_uri: str, tmp_path: Path) -> AsyncIterator[RunningServer]:
    async with running_server(database_uri, tmp_path, retention_scheduler=False) as running:
        yield running


@pytest.fixture
async def dpo_token(carnet: RunningServer) -> str:
    """A DPO token scoped to the demo school."""
    uai = carnet.demo["school"]["uai"]
    token, _ = await create_api_token(carnet.store, "dpo", uai, "test dpo", carnet.clock.now())
    return token


@pytest.fixture
async def other_dpo_token(carnet: RunningServer) -> str:
    """A DPO token of another school."""
    now = carnet.clock.now()
    token, _ = await create_api_token(carnet.store, "dpo", OTHER_SCHOOL, "other dpo", now)
    return token


@pytest.fixture
async def seeded(carnet: RunningServer, http: aiohttp.ClientSession) -> Seeded:
    return await seed_pupil(carnet, http)
