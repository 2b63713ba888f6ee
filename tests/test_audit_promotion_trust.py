"""The promotion control counts only prior updates whose signatures verify: a forged "it passed staging" record,
appended with a key the organisation does not trust, must not satisfy it."""

from __future__ import annotations

from ps019.evidence import Artifact, EvidenceRecord, Signer, open_store, public_key_map
from ps019.evidence.audit import load_promotion_facts

COMMIT = "a" * 40


def _staging_update(project: str) -> EvidenceRecord:
    return EvidenceRecord(kind="update", organization="acme", project=project, stack="staging",
                          environment="staging", outcome="succeeded", artifact=Artifact(git_commit=COMMIT))


def test_forged_lower_tier_update_is_not_counted(tmp_path):
    store = open_store(f"sqlite:///{tmp_path}/e.db")
    trusted, forger = Signer.generate(), Signer.generate()
    store.append(_staging_update("forged"), forger)
    store.append(_staging_update("genuine"), trusted)
    keys = public_key_map({"": trusted.public_key_b64()})

    assert load_promotion_facts(store, "acme", "forged", COMMIT).prior_updates  # unverified: it would count
    assert not load_promotion_facts(store, "acme", "forged", COMMIT, public_keys=keys).prior_updates
    assert load_promotion_facts(store, "acme", "genuine", COMMIT, public_keys=keys).prior_updates
