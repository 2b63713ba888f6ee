import subprocess
import sys


def test_cli_help_lists_every_area():
    out = subprocess.run([sys.executable, "-m", "ps019.cli", "--help"], capture_output=True, text=True, check=True)
    for command in ("analyze", "iam", "break-glass", "evidence"):
        assert command in out.stdout
