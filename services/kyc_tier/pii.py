"""Personal data at rest: the NIK sealed per customer, found by a keyed hash.

The NIK is sealed with AES-256-GCM under the customer's "pii" data key
(identity_crypto envelope; erasure destroys the key), bound to the org and
customer by associated data. Exact search uses HMAC-SHA256 of the
organisation and NIK under a separate index key, so the database never holds
the NIK in clear, a leaked table does not reveal it by a dictionary over
10^16 values without the key, and the same person at two organisations has
two unrelated hashes (the table links no one across partners). Responses
carry only the masked form (first six, last four).
"""

from __future__ import annotations

import hashlib
import hmac

from sqlalchemy.orm import Session

from identity_crypto import envelope
from identity_crypto.datakeys import DataKeyStore
from services.kyc_tier import models

PII_PURPOSE = "pii"
BUNDLE_PURPOSE = "bundle"
ORG_PURPOSE = "org"


def mask_nik(nik: str) -> str:
    return nik[:6] + "*" * 6 + nik[-4:]


# customers.nik_index_version of a hash bound to the organisation (NULL:
# the NIK alone, before; recovery.LegacyNikIndex re-indexes those).
INDEX_VERSION = 2


def _derived(index_key: str, version: int) -> bytes:
    label = f"identity-platform/nik-index/v{version}\x00".encode()
    return hashlib.sha256(label + index_key.encode()).digest()


class PiiVault:
    def __init__(self, keys: DataKeyStore, index_key: str):
        self.keys = keys
        self._index_key = _derived(index_key, INDEX_VERSION)
        self._legacy_index_key = _derived(index_key, 1)

    def nik_index(self, org_id: str, nik: str) -> str:
        message = f"{org_id}\x00{nik}".encode()
        return hmac.new(self._index_key, message, hashlib.sha256).hexdigest()

    def nik_lookups(self, org_id: str, nik: str) -> tuple[str, str]:
        """The hashes an organisation's customer with this NIK may have: the
        current one, and the NIK-only one of a row not yet re-indexed."""
        legacy = hmac.new(self._legacy_index_key, nik.encode(), hashlib.sha256).hexdigest()
        return self.nik_index(org_id, nik), legacy

    @staticmethod
    def _aad(customer: models.Customer) -> bytes:
        return envelope.associated_data(
            "customer_nik", org_id=customer.org_id, customer_id=customer.customer_id
        )

    def store_nik(self, session: Session, customer: models.Customer, nik: str) -> None:
        key = self.keys.customer_key(session, customer.org_id, customer.customer_id, PII_PURPOSE)
        customer.nik_sealed = envelope.seal(key.material, nik.encode(), self._aad(customer))
        customer.pii_key_id = key.key_id
        customer.nik_hash = self.nik_index(customer.org_id, nik)
        customer.nik_index_version = INDEX_VERSION
        customer.nik_masked = mask_nik(nik)

    def reindex_nik(self, session: Session, customer: models.Customer) -> None:
        """Hashes the customer's stored NIK again, bound to the organisation
        (None when its key is gone: nothing left to find it by)."""
        nik = self.read_nik(session, customer)
        customer.nik_hash = self.nik_index(customer.org_id, nik) if nik else None
        customer.nik_index_version = INDEX_VERSION

    def read_nik(self, session: Session, customer: models.Customer) -> str:
        """The NIK in clear, for a cross-check in this process only; "" if none."""
        if customer.nik_sealed is None or customer.pii_key_id is None:
            return ""
        row = session.get(models.DataKey, customer.pii_key_id)
        if row is None:
            return ""
        material = self.keys.open_key(row)
        return envelope.open_sealed(material, customer.nik_sealed, self._aad(customer)).decode()

    def seal_bundle(
        self, session: Session, customer: models.Customer, bundle_id: str, payload: bytes
    ) -> tuple[str, bytes]:
        key = self.keys.customer_key(session, customer.org_id, customer.customer_id, BUNDLE_PURPOSE)
        aad = envelope.associated_data(
            "capture_bundle",
            org_id=customer.org_id,
            customer_id=customer.customer_id,
            bundle_id=bundle_id,
        )
        return key.key_id, envelope.seal(key.material, payload, aad)

    def open_bundle(self, session: Session, row: models.CaptureBundle) -> bytes:
        key_row = session.get(models.DataKey, row.data_key_id)
        if key_row is None:
            return b""
        aad = envelope.associated_data(
            "capture_bundle",
            org_id=row.org_id,
            customer_id=row.customer_id,
            bundle_id=row.bundle_id,
        )
        return envelope.open_sealed(self.keys.open_key(key_row), row.sealed_payload, aad)

    @staticmethod
    def _org_aad(org: models.Org) -> bytes:
        return envelope.associated_data("org_evidence_secret", org_id=org.org_id)

    def store_org_secret(self, session: Session, org: models.Org, secret: bytes) -> None:
        """Seal an organisation-level secret (Dukcapil evidence HMAC key)."""
        key = self.keys.customer_key(session, org.org_id, None, ORG_PURPOSE)
        org.evidence_secret_sealed = (
            key.key_id.encode() + b":" + envelope.seal(key.material, secret, self._org_aad(org))
        )

    def open_org_secret(self, session: Session, org: models.Org) -> bytes | None:
        if org.evidence_secret_sealed is None:
            return None
        key_id, _, sealed = org.evidence_secret_sealed.partition(b":")
        row = session.get(models.DataKey, key_id.decode())
        if row is None:
            return None
        return envelope.open_sealed(self.keys.open_key(row), sealed, self._org_aad(org))

    def destroy(self, session: Session, customer: models.Customer) -> int:
        destroyed, _ = self.keys.destroy_customer_keys(
            session, customer.org_id, customer.customer_id, (PII_PURPOSE, BUNDLE_PURPOSE)
        )
        return destroyed
