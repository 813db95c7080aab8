from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.support import World
from tests.ui.browser import Browsers


@pytest.fixture
async def browsers(world: World) -> AsyncIterator[Browsers]:
    opened = Browsers(world)
    yield opened
    await opened.close()
