"""PyTorch is optional: `import w4a16` never imports it (tests/python/test_torch.py skips without it)."""

from __future__ import annotations

import subprocess
import sys


def test_import_w4a16_does_not_import_torch():
    code = "import sys, w4a16; assert 'torch' not in sys.modules, 'import w4a16 imported torch'"
    subprocess.run([sys.executable, "-c", code], check=True)
