"""``ps019 evidence public-key``: the verifying key of the configured evidence signer, in the forms that
``ps019 evidence verify --public-key`` (and ``evidence.verify_keys``) take. See docs/auditor-guide.md, "Getting the
verifying key"."""

from __future__ import annotations

import click


@click.command("public-key")
@click.option("--signing-key-file", type=click.Path(dir_okay=False), default=None,
              help="The evidence signing key (as ps019-settings.evidence.signing_key_file). Default: "
                   "$PS019_EVIDENCE_SIGNING_KEY_FILE, $PS019_EVIDENCE_SIGNING_KEY, else the per-user key.")
@click.option("--format", "fmt", type=click.Choice(["pem", "base64", "hex", "keyid", "json"]), default="pem",
              show_default=True,
              help="pem: a file for --public-key FILE; base64/hex: the raw key, for --public-key KEY or "
                   "evidence.verify_keys; keyid: the SHA-256 of the raw key that envelopes name; json: "
                   "{keyid: base64}, ready for evidence.verify_keys.")
def public_key(signing_key_file: str | None, fmt: str) -> None:
    """Print the public key that verifies this signer's evidence records (never the private key).

    Run it where the records are signed (the platform team's pipeline, with the same key settings as the pack) and
    hand the output to the auditor: `ps019 evidence public-key > org-evidence.pub`, then `ps019 evidence verify
    --public-key org-evidence.pub`."""
    import base64
    import json

    from ps019.evidence import EvidenceSettings
    from ps019.evidence.signing import load_signer, raw_public_bytes

    signer = load_signer(EvidenceSettings(signing_key_file=signing_key_file))
    raw = raw_public_bytes(signer.public_key)
    if fmt == "pem":
        click.echo(signer.public_key_pem(), nl=False)
    elif fmt == "base64":
        click.echo(base64.b64encode(raw).decode())
    elif fmt == "hex":
        click.echo(raw.hex())
    elif fmt == "keyid":
        click.echo(signer.keyid)
    else:
        click.echo(json.dumps({signer.keyid: base64.b64encode(raw).decode()}, indent=2))
    click.echo(f"keyid {signer.keyid} (from {signer.source})", err=True)


def verification_destination(signer, update_envelope: dict, store_url: str, record_store: str | None) -> str | None:
    """Where ``ps019 verify --state`` puts its verification record: None = the store it verified against, when the
    signer is the key that signed the update record (the organisation's pipeline); otherwise a store of the
    signer's own (``record_store``, else the per-user store), so a record by a key the store does not know never
    enters the organisation's chain. Refuses, in one line, when the only candidate is that same store."""
    from ps019.errors import InputError
    from ps019.evidence.emit import safe_url, store_identity
    from ps019.evidence.paths import default_store_url, resolve_store_url

    signers = {s.get("keyid") for s in update_envelope.get("signatures") or []}
    if signer.keyid in signers:
        return None
    same = store_identity(store_url)
    if record_store:
        if store_identity(record_store) == same:
            raise InputError(f"--record-store {safe_url(record_store)} is the store being verified; your key "
                             f"{signer.keyid[:16]}… does not sign its records, so your verification record would "
                             "break `evidence verify` there: name a store of your own, or use --no-record")
        return record_store
    for candidate in (resolve_store_url(None), default_store_url()):
        if store_identity(candidate) != same:
            return candidate
    raise InputError(f"your key {signer.keyid[:16]}… does not sign the records of {safe_url(store_url)}, and your "
                     "own store is that same store: pass --record-store URL (a store of your own) or --no-record")
