"""The corpus of real public Pulumi Python programs (tests/corpus/programs, see tests/corpus/README.md) analyses
offline in both modes: a valid program exits 0 or 1, never 2; a program that is really broken under the installed
SDKs exits 2 with its own error and file:line."""

from __future__ import annotations

import pytest

from tests.corpus.run import programs, run_all


@pytest.mark.slow
def test_every_corpus_program_analyses_in_preview_and_update():
    outcomes = run_all(["preview", "update"], jobs=2)
    assert len({o.slug for o in outcomes}) == len(programs()) >= 40
    valid = {slug for slug, meta in programs() if meta["expect"] == "analyses"}
    assert len(valid) >= 30
    wrong = [f"{o.slug} {o.mode}: exit {o.exit_code} {o.error[:200]}" for o in outcomes if not o.as_expected]
    assert not wrong, "\n".join(wrong)
    metas = dict(programs())
    for o in outcomes:
        if o.expect == "broken":  # the program's own error, where it happened
            assert metas[o.slug]["error_contains"] in o.error, (o.slug, o.error)
        else:
            assert not any("could not be shaped" in w for w in o.report["warnings"]), (o.slug, o.report["warnings"])
