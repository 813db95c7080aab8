"""The aiobotocore S3 client, configured from lfsd's settings and the standard AWS credential chain."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from aiobotocore.config import AioConfig
from aiobotocore.session import get_session


@asynccontextmanager
async def s3_client(
    *, endpoint_url: str | None, region: str | None, path_style: bool, max_connections: int
) -> AsyncIterator[Any]:
    """Credentials come from the environment, ~/.aws, or the instance/pod role, as every AWS tool finds them."""
    config = AioConfig(
        signature_version="s3v4",
        s3={"addressing_style": "path" if path_style else "auto"},
        retries={"mode": "standard", "max_attempts": 5},
        max_pool_connections=max_connections,
        # lfsd verifies SHA-256 itself; botocore's extra CRC over every part would only cost CPU.
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
        connect_timeout=10,
        read_timeout=120,
    )
    session = get_session()
    async with session.create_client(
        "s3",
        endpoint_url=endpoint_url,
        region_name=region or session.get_config_variable("region") or "us-east-1",
        config=config,
    ) as client:
        yield client
