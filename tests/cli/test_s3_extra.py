"""Without the s3 extra, S3 storage is refused with one line that names the extra."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

# botocore (and so aiobotocore) made unimportable, as on an install without the extra.
WITHOUT_BOTOCORE = """
import sys
sys.modules["botocore"] = None
sys.modules["aiobotocore"] = None
from lfsd.cli import main
main(["storage", "cleanup", "--storage", "s3://bucket/prefix", "--data-dir", sys.argv[1]])
"""


def test_s3_storage_without_the_extra_is_a_one_line_error(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-c", WITHOUT_BOTOCORE, str(tmp_path / "data")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode != 0
    assert "pip install 'lfsd[s3]'" in result.stderr
    assert "Traceback" not in result.stderr
