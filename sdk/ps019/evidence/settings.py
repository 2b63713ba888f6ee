"""Evidence settings: where records go, which key signs them, which keys verify them, where the spool lives."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr

from ps019.evidence.paths import (ENV_SPOOL, ENV_STORE, default_data_dir, default_store_url,  # noqa: F401 - API
                                  resolve_store_url)
from ps019.evidence.signing import load_signer, public_key_map


class EvidenceSettings(BaseModel):
    """Composed into the pack settings by the integrator; every field has a working default."""

    model_config = ConfigDict(extra="forbid")

    store_url: str | None = Field(None, description="sqlite:///path | s3://bucket/prefix | postgresql://...; "
                                                    "None -> $PS019_EVIDENCE_STORE -> per-user sqlite")
    signing_key_file: str | None = Field(None, description="path to the Ed25519 private key (PEM or base64 raw)")
    signing_key: SecretStr | None = Field(None, description="the key itself (prefer the file or env var)")
    verify_keys: dict[str, str] = Field(default_factory=dict,
                                        description="keyid (sha256 of raw public key) -> public key (PEM/base64/hex)")
    spool_dir: str | None = Field(None, description="None -> $PS019_EVIDENCE_SPOOL_DIR -> <data dir>/spool")
    s3_retention_days: int = Field(2557, ge=1, description="Object Lock COMPLIANCE retention (default ~7 years)")
    outage_level: Literal["advisory", "mandatory"] = Field(
        "advisory", description="when the store is unreachable during a production run: mandatory fails the run")
    connect_timeout_s: float = Field(5.0, gt=0)

    def resolved_store_url(self) -> str:
        return resolve_store_url(self.store_url)

    def resolved_spool_dir(self) -> Path:
        return Path(self.spool_dir or os.environ.get(ENV_SPOOL) or default_data_dir() / "spool").expanduser()

    def public_keys(self):
        """keyid -> Ed25519PublicKey for verification. With no keys configured, the local signer's own public key
        (self-verification: fine for a demo, not an independent check -- docs/evidence.md)."""
        if self.verify_keys:
            return public_key_map(self.verify_keys)
        signer = load_signer(self)
        return {signer.keyid: signer.public_key}
