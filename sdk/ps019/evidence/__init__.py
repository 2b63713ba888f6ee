"""The evidence record: signed, hash-chained, append-only records of every preview, update, blocked attempt and
governance event, in sqlite, S3 (Object Lock) or PostgreSQL. See docs/evidence.md."""

from ps019.evidence.chain import ChainFailure, ChainVerification, verify_chain, verify_record, verify_store
from ps019.evidence.emit import EmitResult, FlushResult, emit, flush_spool, spooled_files
from ps019.evidence.record import (
    SCHEMA_VERSION,
    ApprovalPayload,
    Artifact,
    BreakGlassClosePayload,
    BreakGlassOpenPayload,
    BreakGlassReviewPayload,
    CiRun,
    EvidenceRecord,
    ExceptionPayload,
    Identity,
    PolicyPackRef,
    PolicyResult,
    RecordKind,
    ResourceChange,
    VerificationPayload,
    VerifiedReference,
    canonical_bytes,
    inputs_digest,
    json_schema,
    policy_result,
    record_hash,
    resource_change,
)
from ps019.evidence.settings import EvidenceSettings, default_data_dir, default_store_url
from ps019.evidence.signing import PAYLOAD_TYPE, PREDICATE_TYPE, Signer, keyid_of, load_signer, public_key_map
from ps019.evidence.registry import open_store, register_scheme
from ps019.evidence.store import GENESIS_HASH, EvidenceStore, Query, StoredRecord

__all__ = [
    "SCHEMA_VERSION", "ApprovalPayload", "Artifact", "BreakGlassClosePayload", "BreakGlassOpenPayload",
    "BreakGlassReviewPayload", "ChainFailure", "ChainVerification", "CiRun", "EmitResult", "EvidenceRecord",
    "EvidenceSettings", "EvidenceStore", "ExceptionPayload", "FlushResult", "GENESIS_HASH", "Identity",
    "PAYLOAD_TYPE", "PREDICATE_TYPE", "PolicyPackRef", "PolicyResult", "Query", "RecordKind", "ResourceChange",
    "Signer", "StoredRecord", "VerificationPayload", "VerifiedReference", "canonical_bytes", "default_data_dir",
    "default_store_url", "emit", "flush_spool", "inputs_digest", "json_schema", "keyid_of", "load_signer",
    "open_store", "policy_result", "register_scheme", "public_key_map", "record_hash", "resource_change", "spooled_files",
    "verify_chain", "verify_record", "verify_store",
]
