"""A real S3 API server on loopback for the tests: moto's server, started on a free port."""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import pytest

from tests.e2e.harness import listening

CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "lfsd-test",
    "AWS_SECRET_ACCESS_KEY": "lfsd-test-secret",
    "AWS_DEFAULT_REGION": "us-east-1",
}


@dataclass(frozen=True)
class S3Server:
    endpoint: str

    def new_bucket(self) -> str:
        import boto3

        name = f"lfsd-{secrets.token_hex(6)}"
        boto3.client("s3", endpoint_url=self.endpoint, region_name="us-east-1").create_bucket(Bucket=name)
        return name


@contextmanager
def running_s3() -> Iterator[S3Server]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    process = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, **CREDENTIALS},
    )
    try:
        if not listening(port, process):
            pytest.fail("moto's S3 server did not start (pip install 'moto[server]')")
        yield S3Server(f"http://127.0.0.1:{port}")
    finally:
        process.terminate()
        process.wait(timeout=10)
