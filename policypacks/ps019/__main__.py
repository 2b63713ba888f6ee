"""The ps019 policy pack. All policies come from the ps019 SDK's control registry (see docs/controls.md).

Inside the ps019 repository the SDK is this checkout's sdk/ directory unless the interpreter already has ps019
installed (`pip install -e .`); `pulumi install` puts its dependencies into venv/ (requirements.txt). A pack built with
`ps019 pack build` vendors the SDK as a wheel instead.
"""

import sys
from pathlib import Path

try:
    import ps019  # noqa: F401 - an installed SDK wins
except ModuleNotFoundError:
    sdk = Path(__file__).resolve().parents[2] / "sdk"
    if (sdk / "ps019" / "__init__.py").is_file():
        sys.path.insert(0, str(sdk))

from ps019.pack import serve  # noqa: E402

serve(Path(__file__).resolve().parent)
