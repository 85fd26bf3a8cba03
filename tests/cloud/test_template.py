"""The SAM template passes cfn-lint, and its role reaches only the lake's prefix."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_cfn_lint_passes() -> None:
    exe = Path(sys.executable).parent / "cfn-lint"
    result = subprocess.run([str(exe), str(ROOT / "deploy" / "template.yaml")], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_least_privilege_and_image_handler() -> None:
    text = (ROOT / "deploy" / "template.yaml").read_text()
    assert '!Sub "${LakeBucket.Arn}/${LakePrefix}/*"' in text and "s3:*" not in text and '"*"' not in text
    assert 'CMD ["fraudflow.cloud.lambda_handler.handler"]' in (ROOT / "deploy" / "Dockerfile").read_text()
