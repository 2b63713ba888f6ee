"""The bundled ps019 pack, except that gathering the run's facts (the gate, identity, store reads) always raises:
every Analyze and AnalyzeStack fails closed with PS019-PACK-000 (tests/test_pack_completeness.py)."""

from pathlib import Path

import ps019.pack.facts as facts
from ps019.pack import serve


def _crash(run):
    raise RuntimeError("fact gathering crashed (test pack)")


facts.gather = _crash
serve(Path(__file__).resolve().parent)
