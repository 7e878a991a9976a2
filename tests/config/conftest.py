"""Fixtures of the runtime-settings tests."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from hearth.models import Setting


@pytest.fixture
async def clean_settings(engine: AsyncEngine) -> AsyncIterator[None]:
    """For tests that commit runtime settings through the app: the table emptied before
    and after."""
    async with engine.begin() as connection:
        await connection.execute(sa.delete(Setting))
    yield
    async with engine.begin() as connection:
        await connection.execute(sa.delete(Setting))
