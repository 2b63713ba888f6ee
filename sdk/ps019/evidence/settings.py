"""Evidence settings: where records go, which key signs them, which keys verify them, where the spool lives."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal, Mapping

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from ps019.evidence.paths import (ENV_SPOOL, ENV_STORE, default_data_dir, default_store_url,  # noqa: F401 - API
                                  resolve_store_url)
from ps019.evidence.signing import load_signer, public_key_map


class CheckpointSettings(BaseModel):
    """Where signed checkpoints are published after appends (``ps019.evidence.witness``), and how often."""

    model_config = ConfigDict(extra="forbid")

    sink: str = Field(..., description="file:///absolute/dir | s3://bucket/prefix (Object Lock) | stderr (the CI "
                                       "log); somewhere the store's writer cannot rewrite")
    every: int = Field(1, ge=1, description="publish after every N-th record of a chain (1: every append)")
    retention_days: int | None = Field(None, ge=1, description="S3 sink: Object Lock COMPLIANCE retention; "
                                                               "default: s3_retention_days")

    @field_validator("sink")
    @classmethod
    def _known_sink(cls, value: str) -> str:
        from urllib.parse import urlparse

        parsed = urlparse(value)
        if value == "stderr" or (parsed.scheme == "file" and parsed.path.startswith("/") and not parsed.netloc) \
                or (parsed.scheme == "s3" and parsed.netloc):
            return value
        raise ValueError("must be file:///absolute/dir, s3://bucket/prefix or stderr")


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
    outage_level: Literal["advisory", "mandatory"] | None = Field(
        None, description="when the store is unreachable during a production run. Unset: mandatory -- the run is "
                          "blocked at its first resource, before anything changes, and the record is spooled. "
                          "'advisory' relaxes that (the relaxation is written into every production record)")
    production_store_from_environment: bool = Field(
        False, description="production runs take their store only from store_url (pack config); true lets "
                           "$PS019_EVIDENCE_STORE or the per-user default choose it, as for other tiers (a relaxation "
                           "written into every production record)")
    connect_timeout_s: float = Field(5.0, gt=0)
    checkpoints: CheckpointSettings | None = Field(
        None, description="publish a signed checkpoint after every append, and refuse a store behind the latest "
                          "one (docs/evidence.md, Checkpoints)")

    def resolved_store_url(self) -> str:
        return resolve_store_url(self.store_url)

    def outage_level_for(self, environment: str | None) -> str:
        """What an unreachable store means for a record of this tier: mandatory for production unless relaxed."""
        if environment != "production":
            return "advisory"
        return self.outage_level or "mandatory"

    def production_target(self, environ: Mapping[str, str] | None = None) -> tuple[str, str, list[str], str | None]:
        """(store URL, where it came from, relaxations, problem) for a production run. The URL comes from the pack
        config (``store_url``); an environment variable never redirects a production record. Without a pinned
        store the record goes to the per-user default store and ``problem`` says why the run is blocked -- unless
        ``production_store_from_environment`` relaxes that explicitly."""
        env = os.environ if environ is None else environ
        relaxed = [f"evidence.outage_level={self.outage_level}"] if self.outage_level == "advisory" else []
        if self.store_url:
            return self.store_url, "pack-config", relaxed, None
        if self.production_store_from_environment:
            relaxed.append("evidence.production_store_from_environment=true")
            source = "environment" if env.get(ENV_STORE) else "default"
            return env.get(ENV_STORE) or default_store_url(), source, relaxed, None
        ignored = f"; ${ENV_STORE} is ignored for production" if env.get(ENV_STORE) else ""
        return (default_store_url(), "default", relaxed,
                "the production evidence store is not pinned in the pack config (ps019-settings.evidence.store_url)"
                f"{ignored}: this run's record goes to the per-user default store, which whoever runs the deployment "
                "controls. Set store_url (or, to accept that, evidence.production_store_from_environment: true)")

    def target(self, environment: str | None, environ: Mapping[str, str] | None = None
               ) -> tuple[str, str, list[str], str | None]:
        """:meth:`production_target` for production; otherwise store_url -> $PS019_EVIDENCE_STORE -> default."""
        if environment == "production":
            return self.production_target(environ)
        env = os.environ if environ is None else environ
        if self.store_url:
            return self.store_url, "pack-config", [], None
        return (env.get(ENV_STORE) or default_store_url(), "environment" if env.get(ENV_STORE) else "default",
                [], None)

    def resolved_spool_dir(self) -> Path:
        return Path(self.spool_dir or os.environ.get(ENV_SPOOL) or default_data_dir() / "spool").expanduser()

    def public_keys(self):
        """keyid -> Ed25519PublicKey for verification. With no keys configured, the local signer's own public key
        (self-verification: fine for a demo, not an independent check -- docs/evidence.md)."""
        if self.verify_keys:
            return public_key_map(self.verify_keys)
        signer = load_signer(self)
        return {signer.keyid: signer.public_key}
