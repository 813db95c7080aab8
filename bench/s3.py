"""S3 benchmark: 1 GiB through lfsd (curl PUT/GET of its hrefs) against boto3's own transfer of the same file, on
the same S3 test server, and lfsd's peak RSS for a 1 GiB and a 4 GiB upload, plus a sweep of part settings.

The S3 server is s3rver (npm; keeps objects on disk) when bench/node_modules has it, else moto's server (memory).
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from tests.e2e.client import batch, curl  # noqa: E402
from tests.e2e.harness import Server, free_port, write_random  # noqa: E402

from run import Figure, GiB, MiB, measured  # noqa: E402

S3RVER = ROOT / "bench" / "node_modules" / ".bin" / "s3rver"


@contextmanager
def s3_server(work: Path) -> Iterator[tuple[str, dict[str, str], str]]:
    port = free_port()
    if S3RVER.exists():
        creds = {"AWS_ACCESS_KEY_ID": "S3RVER", "AWS_SECRET_ACCESS_KEY": "S3RVER"}
        command = [str(S3RVER), "-d", str(work / "s3rver"), "-a", "127.0.0.1", "-p", str(port), "--silent"]
        name = "s3rver (disk)"
    else:
        creds = {"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench"}
        command = [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)]
        name = "moto (memory)"
    (work / "s3rver").mkdir(exist_ok=True)
    process = subprocess.Popen(
        command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env={**os.environ, **creds}
    )
    try:
        for _ in range(300):
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                    break
            except OSError:
                time.sleep(0.1)
        yield f"http://127.0.0.1:{port}", creds, name
    finally:
        process.terminate()
        process.wait()


def boto3_figures(endpoint: str, creds: dict[str, str], bucket: str, path: Path, figures: list[Figure]) -> None:
    import boto3
    from boto3.s3.transfer import TransferConfig
    from botocore.config import Config

    client = boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id=creds["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=creds["AWS_SECRET_ACCESS_KEY"],
        config=Config(s3={"addressing_style": "path"}, request_checksum_calculation="when_required"),
    )
    client.create_bucket(Bucket=bucket)
    config = TransferConfig()  # boto3's defaults: 8 MiB parts, 10 threads
    t0 = time.perf_counter()
    client.upload_file(str(path), bucket, "boto3/1g.bin", Config=config)
    figures.append(Figure("boto3 upload_file 1 GiB", GiB / (time.perf_counter() - t0) / 1e6))
    target = path.with_suffix(".down")
    t0 = time.perf_counter()
    client.download_file(bucket, "boto3/1g.bin", str(target), Config=config)
    figures.append(Figure("boto3 download_file 1 GiB", GiB / (time.perf_counter() - t0) / 1e6))
    target.unlink()
    for figure in figures[-2:]:
        print(f"  {figure.case:<44} {figure.mb_per_s:8.0f} MB/s")


def lfsd_case(
    work: Path,
    endpoint: str,
    creds: dict[str, str],
    bucket: str,
    files: list[tuple[Path, str, int]],
    env: dict[str, str],
    label: str,
    figures: list[Figure],
    download: bool,
) -> None:
    data = work / f"data-{label.replace(' ', '-')}"
    server = Server.start(
        data,
        extra_env={
            **creds,
            "LFSD_STORAGE": f"s3://{bucket}/{label.replace(' ', '-')}",
            "LFSD_S3_ENDPOINT_URL": endpoint,
            "LFSD_S3_PATH_STYLE": "true",
            **env,
        },
    )
    pid = server.process.pid
    try:
        server.cli("user", "add", "bench")
        token = server.cli("token", "create", "bench").stdout.splitlines()[-1]
        server.cli("repo", "create", "bench/s3")
        server.cli("repo", "grant", "bench/s3", "bench", "write")
        for path, oid, size in files:
            action = batch(server.url, "bench/s3", "bench", token, "upload", oid, size)["actions"]["upload"]
            with measured(pid, f"lfsd PUT {size // GiB} GiB ({label})", size, figures):
                result = curl(action, "-T", str(path))
            assert result.stdout.startswith("200"), result.stdout + result.stderr
            if download:
                action = batch(server.url, "bench/s3", "bench", token, "download", oid, size)["actions"]["download"]
                with measured(pid, f"lfsd GET {size // GiB} GiB ({label})", size, figures):
                    assert curl(action).stdout == f"200 {size}"
    finally:
        server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--work", type=Path, default=None)
    parser.add_argument("--quick", action="store_true", help="skip the 4 GiB upload and the part sweep")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="lfsd-s3-bench-", dir=args.work))
    figures: list[Figure] = []
    try:
        one = work / "1g.bin"
        oid_one = write_random(one, GiB)
        with s3_server(work) as (endpoint, creds, name):
            print(f"S3 server: {name} at {endpoint}")
            bucket = "lfsd-bench"
            boto3_figures(endpoint, creds, bucket, one, figures)
            print("lfsd, proxied, defaults (8 MiB parts, 4 in flight)")
            files = [(one, oid_one, GiB)]
            if not args.quick:
                four = work / "4g.bin"
                files.append((four, write_random(four, 4 * GiB), 4 * GiB))
            lfsd_case(work, endpoint, creds, bucket, files, {}, "defaults", figures, download=True)
            if not args.quick:
                print("part settings (1 GiB PUT)")
                for part_mib, in_flight in ((8, 2), (8, 8), (16, 4), (32, 4)):
                    env = {"LFSD_S3_PART_SIZE": str(part_mib * MiB), "LFSD_S3_PARTS_IN_FLIGHT": str(in_flight)}
                    label = f"{part_mib} MiB x {in_flight}"
                    lfsd_case(work, endpoint, creds, bucket, [(one, oid_one, GiB)], env, label, figures, False)
        by_case = {figure.case: figure for figure in figures}
        put = by_case["lfsd PUT 1 GiB (defaults)"]
        get = by_case["lfsd GET 1 GiB (defaults)"]
        print("\ntargets")
        up = put.mb_per_s / by_case["boto3 upload_file 1 GiB"].mb_per_s
        down = get.mb_per_s / by_case["boto3 download_file 1 GiB"].mb_per_s
        print(f"  lfsd PUT / boto3 upload_file     = {up:.2f} (target >= 0.8)")
        print(f"  lfsd GET / boto3 download_file   = {down:.2f} (target >= 0.8)")
        if "lfsd PUT 4 GiB (defaults)" in by_case:
            four_rss = by_case["lfsd PUT 4 GiB (defaults)"].peak_rss_mib or 0.0
            one_rss = put.peak_rss_mib or 1.0
            change = four_rss / one_rss - 1
            print(f"  peak RSS 4 GiB vs 1 GiB PUT      = {four_rss:.1f} vs {one_rss:.1f} MiB ({change:+.1%})")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
