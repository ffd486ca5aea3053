"""Envelope encryption: seal/open, refusal of wrong keys and tampering, rotation, shredding."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import sqlalchemy as sa

from identity_crypto import envelope, templates
from identity_crypto.datakeys import DataKeyStore, kek_usage, rewrap_data_keys
from identity_crypto.errors import KeyDestroyed, KeyNotFound, SealedDataUnreadable
from identity_crypto.keyring import (
    Keyring,
    KeyringError,
    generate,
    load_keyring,
    new_key,
    write_keyring_file,
)
from identity_crypto.kms import LocalKms
from identity_store.db import Database
from services.kyc_tier import models as kyc_tier
from services.matching import models


def unit(dimension: int, seed: int) -> np.ndarray:
    v = np.random.default_rng(seed).standard_normal(dimension).astype(np.float32)
    return v / np.linalg.norm(v)


def aad(enrollment_id: str = "enr_1", customer_id: str = "cus_1") -> bytes:
    return envelope.template_aad("org_1", customer_id, enrollment_id, "qe-face-v3", 512, "fp16")


def test_seal_open_round_trip_and_size_under_2kb() -> None:
    key = new_key()
    vector = unit(512, 1)
    for fmt, bound in (("fp16", 2e-3), ("int8", 1e-2)):
        sealed = envelope.seal(key, templates.encode(vector, fmt), aad())
        assert len(sealed) < 2048
        opened = templates.decode(envelope.open_sealed(key, sealed, aad()), fmt, 512)
        assert abs(float(opened @ vector) - 1.0) < bound
    # A 512-d fp16 template: 1 KiB payload + 29 bytes of format, nonce and tag.
    assert (
        len(envelope.seal(key, templates.encode(vector, "fp16"), aad()))
        == 1024 + envelope.OVERHEAD_BYTES
    )


def test_wrong_key_tampering_and_moved_ciphertext_are_refused() -> None:
    key = new_key()
    sealed = envelope.seal(key, templates.encode(unit(512, 2), "fp16"), aad())
    with pytest.raises(SealedDataUnreadable):
        envelope.open_sealed(new_key(), sealed, aad())
    for position in (0, 5, 100, len(sealed) - 1):
        tampered = bytearray(sealed)
        tampered[position] ^= 0x01
        with pytest.raises(SealedDataUnreadable):
            envelope.open_sealed(key, bytes(tampered), aad())
    with pytest.raises(SealedDataUnreadable):
        envelope.open_sealed(key, sealed[:20], aad())
    # The same ciphertext in another row (other enrollment or customer) does not open.
    with pytest.raises(SealedDataUnreadable):
        envelope.open_sealed(key, sealed, aad(enrollment_id="enr_2"))
    with pytest.raises(SealedDataUnreadable):
        envelope.open_sealed(key, sealed, aad(customer_id="cus_2"))


def test_associated_data_is_unambiguous() -> None:
    assert envelope.associated_data("t", a="ab", b="c") != envelope.associated_data(
        "t", a="a", b="bc"
    )


def test_keyring_parsing_never_echoes_key_material(tmp_path: Path) -> None:
    ring = generate("kek-1").with_key("kek-2", new_key(), make_primary=True)
    path = tmp_path / "keyring.json"
    write_keyring_file(path, ring)
    assert path.stat().st_mode & 0o777 == 0o600
    loaded = load_keyring(path, "", "KEK keyring")
    assert loaded.primary_id == "kek-2" and set(loaded.ids()) == {"kek-1", "kek-2"}
    assert "keys=" not in repr(loaded) and str(loaded.keys["kek-1"]) not in repr(loaded)
    document = json.loads(path.read_text())
    document["keys"]["kek-1"] = "bm90LTMyLWJ5dGVz"  # base64 of "not-32-bytes"
    with pytest.raises(KeyringError) as caught:
        Keyring.from_json(json.dumps(document))
    assert "kek-1" in str(caught.value) and "bm90" not in str(caught.value)
    with pytest.raises(KeyringError):
        Keyring.from_json('{"primary": "missing", "keys": {}}')
    with pytest.raises(KeyringError):
        load_keyring(None, "", "KEK keyring")


def test_kms_refuses_unknown_kek_and_moved_wrapped_key() -> None:
    kms = LocalKms(generate("kek-1"))
    kek_id, wrapped = kms.wrap(b"k" * 32, b"row-a")
    assert kms.unwrap(kek_id, wrapped, b"row-a") == b"k" * 32
    with pytest.raises(SealedDataUnreadable):
        kms.unwrap(kek_id, wrapped, b"row-b")
    with pytest.raises(KeyNotFound):
        kms.unwrap("kek-9", wrapped, b"row-a")
    # Same id, different material (a wrong key file) is refused too.
    with pytest.raises(SealedDataUnreadable):
        LocalKms(generate("kek-1")).unwrap(kek_id, wrapped, b"row-a")


def _seal_for(
    store: DataKeyStore, session, customer_id: str, enrollment_id: str, vector: np.ndarray
) -> models.Enrollment:
    key = store.customer_key(session, "org_1", customer_id, "template")
    sealed = envelope.seal(
        key.material,
        templates.encode(vector, "fp16"),
        envelope.template_aad("org_1", customer_id, enrollment_id, "qe-face-v3", 512, "fp16"),
    )
    row = models.Enrollment(
        enrollment_id=enrollment_id,
        org_id="org_1",
        customer_id=customer_id,
        source="dukcapil",
        source_priority=1,
        model_id="qe-face-v3",
        model_version="",
        dimension=512,
        template_format="fp16",
        sealed_template=sealed,
        data_key_id=key.key_id,
    )
    session.add(row)
    return row


def _open(store: DataKeyStore, session, enrollment_id: str) -> np.ndarray:
    row = session.get(models.Enrollment, enrollment_id)
    key_row = session.get(models.DataKey, row.data_key_id)
    material = store.open_key(key_row)
    plaintext = envelope.open_sealed(
        material,
        row.sealed_template,
        envelope.template_aad(
            row.org_id,
            row.customer_id,
            row.enrollment_id,
            row.model_id,
            row.dimension,
            row.template_format,
        ),
    )
    return templates.decode(plaintext, row.template_format, row.dimension)


@pytest.mark.postgres
def test_rotation_rewraps_keys_and_every_template_still_opens(database_url: str) -> None:
    database = Database(database_url)
    old = generate("kek-2026-01")
    store = DataKeyStore(LocalKms(old), models.DataKey, cache_size=0)
    vectors = {f"cus_{i}": unit(512, 100 + i) for i in range(25)}
    with database.transaction() as session:
        for customer_id, vector in vectors.items():
            _seal_for(store, session, customer_id, f"enr_{customer_id}", vector)
    with database.transaction() as session:
        sealed_before = dict(
            session.execute(
                sa.select(models.Enrollment.enrollment_id, models.Enrollment.sealed_template)
            ).all()
        )

    # Phase 1 of the runbook: new KEK added and made primary, old one kept.
    rotated = old.with_key("kek-2026-07", new_key(), make_primary=True)
    rotated_store = DataKeyStore(LocalKms(rotated), models.DataKey, cache_size=0)
    # Before re-wrapping, a service on the new keyring still opens everything (no downtime).
    with database.transaction() as session:
        for customer_id, vector in vectors.items():
            assert float(_open(rotated_store, session, f"enr_{customer_id}") @ vector) > 0.999
    report = rewrap_data_keys(database.transaction, LocalKms(rotated), models.DataKey, batch_size=7)
    assert report.rewrapped == 25 and report.batches == 4 and report.remaining == {}
    with database.transaction() as session:
        assert kek_usage(session, models.DataKey) == {"kek-2026-07": 25}
        sealed_after = dict(
            session.execute(
                sa.select(models.Enrollment.enrollment_id, models.Enrollment.sealed_template)
            ).all()
        )
    assert sealed_after == sealed_before  # templates were not re-encrypted

    # Phase 3: the old KEK is removed; every template still opens.
    final_store = DataKeyStore(
        LocalKms(rotated.without_key("kek-2026-01")), models.DataKey, cache_size=0
    )
    with database.transaction() as session:
        for customer_id, vector in vectors.items():
            assert float(_open(final_store, session, f"enr_{customer_id}") @ vector) > 0.999
    # And a store that only has the retired KEK cannot open anything any more.
    with database.transaction() as session, pytest.raises(KeyNotFound):
        _open(store, session, "enr_cus_0")
    database.dispose()


@pytest.mark.postgres
def test_shredding_makes_the_customers_templates_unrecoverable(database_url: str) -> None:
    database = Database(database_url)
    store = DataKeyStore(LocalKms(generate("kek-1")), models.DataKey)
    with database.transaction() as session:
        _seal_for(store, session, "cus_a", "enr_a", unit(512, 1))
        _seal_for(store, session, "cus_b", "enr_b", unit(512, 2))
    with database.transaction() as session:
        _open(store, session, "enr_a")  # warm the cache: the shred must still win
        destroyed, when = store.destroy_customer_keys(session, "org_1", "cus_a")
        assert destroyed == 1
    with database.transaction() as session:
        with pytest.raises(KeyDestroyed):
            _open(store, session, "enr_a")
        # The ciphertext is still there, but no key material to open it exists.
        row = session.get(models.Enrollment, "enr_a")
        assert row.sealed_template is not None
        assert session.get(models.DataKey, row.data_key_id).wrapped_key is None
        _open(store, session, "enr_b")  # other customers are unaffected
        # Nothing new is sealed for an erased customer; a second shred is a no-op.
        with pytest.raises(KeyDestroyed):
            store.customer_key(session, "org_1", "cus_a", "template")
        again, when_again = store.destroy_customer_keys(session, "org_1", "cus_a")
        assert again == 0 and when_again == when
        # A customer without keys gets a tombstone.
        assert store.destroy_customer_keys(session, "org_1", "cus_never")[0] == 0
        with pytest.raises(KeyDestroyed):
            store.customer_key(session, "org_1", "cus_never", "template")
    database.dispose()


@pytest.mark.postgres
def test_each_owner_keeps_its_data_keys_in_its_own_table(database_url: str) -> None:
    """kyc-tier's and matching's keys for the same customer live apart: shredding
    one owner's keys leaves the other's, and each counts only its own."""
    database = Database(database_url)
    kms = LocalKms(generate("kek-1"))
    templates_store = DataKeyStore(kms, models.DataKey, cache_size=0)
    pii_store = DataKeyStore(kms, kyc_tier.DataKey, cache_size=0)
    with database.transaction() as session:
        session.add(kyc_tier.Org(org_id="org_1", name="Org"))
        session.flush()
        template_key = templates_store.customer_key(session, "org_1", "cus_a", "template")
        pii_key = pii_store.customer_key(session, "org_1", "cus_a", "pii")
    with database.transaction() as session:
        assert session.get(models.DataKey, template_key.key_id) is not None
        assert session.get(kyc_tier.DataKey, template_key.key_id) is None
        assert session.get(kyc_tier.DataKey, pii_key.key_id) is not None
        assert templates_store.destroy_customer_keys(session, "org_1", "cus_a")[0] == 1
    with database.transaction() as session:
        assert kek_usage(session, models.DataKey) == {}
        assert kek_usage(session, kyc_tier.DataKey) == {"kek-1": 1}
        assert pii_store.customer_key(session, "org_1", "cus_a", "pii").material == (
            pii_key.material
        )
        with pytest.raises(KeyDestroyed):
            templates_store.customer_key(session, "org_1", "cus_a", "template")
    database.dispose()
