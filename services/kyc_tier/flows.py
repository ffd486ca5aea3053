"""The onboarding and step-up flows: kyc-tier orchestrating the mesh.

Each flow resolves the customer in the caller's organisation, sends each
service only what it needs (frames to capture-quality once; crops and colour
samples to liveness; the aligned face to embedding; embeddings to matching),
then writes the verification, the sealed bundle, the tier settlement and the
audit entries in ONE transaction. A request refused on the way (replayed
nonce, expired challenge, bad signature, bad image) writes an attempt and an
audit entry and nothing else.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from identity_runtime import context
from identity_runtime.errors import (
    AlreadyExists,
    DomainError,
    FailedPrecondition,
    NotFound,
    PermissionDenied,
    invalid_field,
)
from identity_store.db import Database
from identity_store.types import utcnow
from services.kyc_tier import bundles, customers, models, outbox, records, signing, tiers
from services.kyc_tier.bundles import BundleInput
from services.kyc_tier.outbox import OutboxRelay
from services.kyc_tier.pii import PiiVault
from services.kyc_tier.ports import (
    CaptureQuality,
    Embedder,
    FaceAssessment,
    FaceEmbedding,
    KtpAssessment,
    Liveness,
    LivenessDecision,
    Matcher,
    MatchResult,
    Reason,
)

# Dukcapil fields that must match for a positive verdict.
DUKCAPIL_REQUIRED_FIELDS = ("nik", "full_name", "birth_date")
DUKCAPIL_FIELDS = ("nik", "full_name", "birth_date", "birth_place", "gender", "address")
DUKCAPIL_MAX_AGE = timedelta(days=30)
CLOCK_SKEW = timedelta(minutes=5)


@dataclass(frozen=True)
class Outcome:
    """A flow's answer, converted to the RPC's response by the mapping."""

    verification: records.VerificationRecord
    tier: str
    liveness: LivenessDecision | None = None
    match: MatchResult | None = None
    quality_reasons: tuple[Reason, ...] = ()
    enrollment_id: str = ""
    replayed: bool = False
    field_checks: tuple[Mapping[str, Any], ...] = ()
    allow: bool = False
    reasons: tuple[Reason, ...] = field(default_factory=tuple)


@dataclass
class Flows:
    database: Database
    vault: PiiVault
    customers: customers.Customers
    quality: CaptureQuality
    liveness: Liveness
    embedder: Embedder
    matcher: Matcher
    relay: OutboxRelay

    # --- shared steps ------------------------------------------------------

    async def _active_customer(self, org_id: str, customer_id: str) -> None:
        def check(session: Session) -> None:
            records.require_active(records.load_customer(session, org_id, customer_id))

        await self.database.run(check)

    @contextlib.asynccontextmanager
    async def _attempt(
        self, org_id: str, customer_id: str, kind: str, action: str
    ) -> AsyncIterator[None]:
        """Refusals inside the block become an attempt row and an audit entry."""
        try:
            yield
        except DomainError as error:
            if error.reason in ("CUSTOMER_NOT_FOUND", "TENANT_MISSING"):
                raise
            reason = Reason(error.reason, error.message)
            code = error.code

            def refuse(session: Session) -> None:
                records.add_attempt(session, org_id, customer_id, kind, "refused", [reason])
                outbox.record(
                    session,
                    org_id,
                    action,
                    f"customer:{customer_id}",
                    "denied",
                    details={"reason": reason.code, "code": code},
                )

            await self.database.run(refuse)
            self.relay.wake()
            raise

    async def _refuse_reused_nonce(self, org_id: str, nonce: str) -> None:
        existing = await self.database.run(
            lambda s: records.verification_by_nonce(s, org_id, nonce)
        )
        if existing is not None:
            raise AlreadyExists("this capture bundle's nonce was already used", "NONCE_REPLAYED")

    async def _commit(self, work: Any) -> Any:
        result = await self.database.run(work)
        self.relay.wake()
        return result

    def _keep_capture(
        self,
        session: Session,
        customer: models.Customer,
        row: models.Verification,
        bundle: BundleInput,
        sha256: str,
        retention: str,
        audit_action: str,
        passed: bool,
        reasons: Sequence[Reason],
        **details: str,
    ) -> None:
        """Seal the capture's frames for their retention window and audit the capture."""
        bundles.store_sealed(
            session, self.vault, customer, row.verification_id, sha256, bundle.raw, retention
        )
        outbox.record(
            session,
            customer.org_id,
            audit_action,
            f"customer:{customer.customer_id}",
            "success" if passed else "denied",
            evidence_hashes={"bundle": sha256},
            details={
                "verification_id": row.verification_id,
                "reasons": ",".join(r.code for r in reasons),
                **details,
            },
        )

    # --- customers --------------------------------------------------------------

    async def create_customer(
        self, org_id: str, data: customers.CustomerInput
    ) -> tuple[customers.CustomerView, records.VerificationRecord | None]:
        return await self._commit(lambda s: self.customers.create(s, org_id, data))

    # --- challenges and devices ---------------------------------------------

    async def issue_flash_challenge(self, org_id: str, customer_id: str, purpose: str) -> Any:
        """A selfie challenge: face liveness (the default) or step-up."""
        if purpose not in ("", "face_liveness", "step_up"):
            raise invalid_field("purpose", "must be face liveness or step-up")
        return await self.issue_challenge(org_id, customer_id, purpose or "face_liveness")

    async def issue_challenge(self, org_id: str, customer_id: str, purpose: str) -> Any:
        await self._active_customer(org_id, customer_id)
        challenge = await self.liveness.issue_challenge(customer_id, purpose)
        await self._commit(
            lambda s: outbox.record(
                s,
                org_id,
                "challenge.issue",
                f"customer:{customer_id}",
                "success",
                details={"purpose": purpose, "challenge_id": challenge.message.challenge_id},
            )
        )
        return challenge

    async def register_device(
        self,
        org_id: str,
        customer_id: str,
        device_id: str,
        algorithm: int,
        public_key_pem: str,
        platform: str,
    ) -> Any:
        if not device_id or len(device_id) > 128:
            raise invalid_field("device_id", "must be 1 to 128 characters")
        if not public_key_pem.strip():
            raise invalid_field("public_key_pem", "is required")
        await self._active_customer(org_id, customer_id)
        reply = await self.liveness.register_device(
            customer_id, device_id, algorithm, public_key_pem.encode(), platform
        )
        await self._commit(
            lambda s: outbox.record(
                s,
                org_id,
                "device.register",
                f"customer:{customer_id}",
                "success",
                details={
                    "device_id": device_id,
                    "created": reply.created,
                    "key_fingerprint": reply.device.key_fingerprint,
                },
            )
        )
        return reply

    # --- KTP capture ----------------------------------------------------------

    async def submit_ktp_capture(
        self,
        org_id: str,
        customer_id: str,
        challenge_id: str,
        bundle: BundleInput,
        ocr_fields: Mapping[str, str],
    ) -> Outcome:
        bundles.validate(bundle, challenge_id)
        await self._active_customer(org_id, customer_id)
        sha256 = bundles.digest(bundle, challenge_id)
        replay = await self._ktp_replay(org_id, customer_id, bundle.attestation.nonce, sha256)
        if replay is not None:
            return replay
        async with self._attempt(org_id, customer_id, tiers.KTP_CAPTURE, "ktp.capture"):
            await self.liveness.check(
                customer_id, "ktp_capture", challenge_id, bundle.attestation, sha256, None
            )
            known_nik = await self.database.run(
                lambda s: self.vault.read_nik(s, records.load_customer(s, org_id, customer_id))
            )
            submitted = {k: v for k, v in ocr_fields.items() if v}
            card = await self.quality.check_ktp(
                bundle.frames[0], known_nik or submitted.get("nik", ""), submitted
            )
            verification_id = records.new_id("ver")
            enrolled = None
            if card.passed and card.portrait_crops is not None:
                embedding = await self.embedder.embed(card.portrait_crops)
                enrolled = await self.matcher.enroll(
                    customer_id, embedding, "ktp_extract", verification_id
                )
        duplicates = enrolled.duplicates if enrolled else ()
        reasons = list(card.reasons) + [
            Reason(t.code, "tamper signal")
            for t in card.tamper
            if t.decisive and not any(r.code == t.code for r in card.reasons)
        ]
        if duplicates:
            reasons.append(
                Reason("DUPLICATE_FACE", "the card portrait matches another customer's reference")
            )
        passed: bool | None = card.passed and not duplicates
        if card.passed and duplicates:
            passed = None  # an analyst decides
        checks = _field_checks(card, ocr_fields)

        def write(session: Session) -> Outcome:
            customer = records.load_customer(session, org_id, customer_id, for_update=True)
            row = records.add_verification(
                session,
                customer,
                tiers.KTP_CAPTURE,
                passed,
                reasons,
                scores={f"tamper_{t.code.lower()}": t.score for t in card.tamper},
                model_ids={"ocr": card.ocr_model},
                input_hashes={
                    "bundle": sha256,
                    "card_frame": hashlib.sha256(bundle.frames[0]).hexdigest(),
                },
                details={
                    "field_checks": list(checks),
                    "enrollment_id": enrolled.enrollment_id if enrolled else "",
                    "duplicate_customers": [d.customer_id for d in duplicates],
                },
                nonce=bundle.attestation.nonce,
                bundle_sha256=sha256,
                verification_id=verification_id,
            )
            self._keep_capture(
                session,
                customer,
                row,
                bundle,
                sha256,
                "onboarding",
                "ktp.capture",
                bool(passed),
                reasons,
                outcome=row.outcome,
            )
            if passed and not customer.nik_sealed and card.nik_valid and card.ocr_nik:
                self.customers.record_nik(session, customer, card.ocr_nik, source="ktp_capture")
            customers.settle(session, customer, "verification", row.verification_id)
            return Outcome(
                verification=records.verification_record(row),
                tier=customer.tier,
                enrollment_id=enrolled.enrollment_id if enrolled else "",
                field_checks=checks,
            )

        return await self._commit(write)

    async def _ktp_replay(
        self, org_id: str, customer_id: str, nonce: str, sha256: str
    ) -> Outcome | None:
        """The same bundle again within 24 h: the original verification."""

        def look(session: Session) -> Outcome | None:
            row = records.verification_by_nonce(session, org_id, nonce)
            if row is None:
                return None
            same = (
                row.kind == tiers.KTP_CAPTURE
                and row.customer_id == customer_id
                and row.bundle_sha256 == sha256
                and records.within_nonce_window(row)
            )
            if not same:
                return None
            customer = records.load_customer(session, org_id, customer_id)
            details = row.details or {}
            return Outcome(
                verification=records.verification_record(row),
                tier=customer.tier,
                enrollment_id=str(details.get("enrollment_id", "")),
                replayed=True,
                field_checks=tuple(details.get("field_checks", ())),
            )

        found = await self.database.run(look)
        if found is None:
            # A nonce seen with another bundle (or out of window) is a replay.
            async with self._attempt(org_id, customer_id, tiers.KTP_CAPTURE, "ktp.capture"):
                await self._refuse_reused_nonce(org_id, nonce)
        return found

    # --- face liveness and match -------------------------------------------------

    async def check_face_liveness(
        self, org_id: str, customer_id: str, challenge_id: str, bundle: BundleInput
    ) -> Outcome:
        bundles.validate(bundle, challenge_id)
        await self._active_customer(org_id, customer_id)
        sha256 = bundles.digest(bundle, challenge_id)
        async with self._attempt(org_id, customer_id, tiers.FACE_LIVENESS, "face.liveness"):
            await self._refuse_reused_nonce(org_id, bundle.attestation.nonce)
            face = await self.quality.assess_face(
                bundle.frames, "selfie", bundle.offsets_ms, bundle.baseline
            )
            decision = await self.liveness.check(
                customer_id, "face_liveness", challenge_id, bundle.attestation, sha256, face
            )
            passed = decision.live and face.passed
            verification_id = records.new_id("ver")
            enrollment_id = ""
            if passed and face.crops is not None:
                existing = await self.matcher.list_enrollments(customer_id, include_retired=False)
                if not any(e.active for e in existing):
                    embedding = await self.embedder.embed(face.crops)
                    enrolled = await self.matcher.enroll(
                        customer_id, embedding, "onboarding_selfie", verification_id
                    )
                    enrollment_id = enrolled.enrollment_id
        reasons = _liveness_reasons(face, decision)

        def write(session: Session) -> Outcome:
            customer = records.load_customer(session, org_id, customer_id, for_update=True)
            row = records.add_verification(
                session,
                customer,
                tiers.FACE_LIVENESS,
                passed,
                reasons,
                scores={
                    "pad": decision.pad_score,
                    "flash": decision.flash_score,
                    **{f"pad_{k}": v for k, v in decision.pad_models.items()},
                },
                model_ids={
                    "detector": face.detector_model,
                    "decision_basis": decision.decision_basis,
                },
                input_hashes={"bundle": sha256},
                details={"best_frame_index": face.best_frame_index, "enrollment_id": enrollment_id},
                nonce=bundle.attestation.nonce,
                bundle_sha256=sha256,
                verification_id=verification_id,
            )
            self._keep_capture(
                session,
                customer,
                row,
                bundle,
                sha256,
                "onboarding",
                "face.liveness",
                passed,
                reasons,
                basis=decision.decision_basis,
            )
            customers.settle(session, customer, "verification", row.verification_id)
            return Outcome(
                verification=records.verification_record(row),
                tier=customer.tier,
                liveness=decision,
                quality_reasons=face.reasons,
                enrollment_id=enrollment_id,
            )

        return await self._commit(write)

    async def match_face(
        self,
        org_id: str,
        customer_id: str,
        probe_image: bytes,
        liveness_verification_id: str,
        reference_image: bytes,
        decode_bundle: Any,
    ) -> Outcome:
        await self._active_customer(org_id, customer_id)
        live_link = ""
        async with self._attempt(org_id, customer_id, tiers.FACE_MATCH, "face.match"):
            if liveness_verification_id:
                frames, baseline = await self._live_frames(
                    org_id, customer_id, liveness_verification_id, decode_bundle
                )
                probe = await self._embed_frames(frames, "selfie", baseline)
                live_link = liveness_verification_id
            elif probe_image:
                probe = await self._embed_frames([probe_image], "reference")
            else:
                raise invalid_field(
                    "probe_image", "give a probe image or a liveness_verification_id"
                )
            if reference_image:
                reference = await self._embed_frames([reference_image], "reference")
                match = await self.matcher.verify_reference(probe, reference)
            else:
                match = await self.matcher.verify_enrolled(customer_id, probe)
        against_enrolled_live = bool(live_link) and not reference_image and match.match
        reasons = (
            ()
            if match.match
            else (
                Reason("FACE_MISMATCH", "the faces do not match at the organisation's threshold"),
            )
        )

        def write(session: Session) -> Outcome:
            customer = records.load_customer(session, org_id, customer_id, for_update=True)
            row = records.add_verification(
                session,
                customer,
                tiers.FACE_MATCH,
                match.match,
                reasons,
                scores=_match_scores(match),
                model_ids={"embedding": probe.model_id},
                input_hashes=_image_hashes(
                    probe_image=probe_image, reference_image=reference_image
                ),
                details={
                    "against_enrolled_live": against_enrolled_live,
                    "liveness_verification_id": live_link,
                    "reference": "partner_image" if reference_image else "enrolled",
                    "enrollment_id": match.enrollment_id,
                },
            )
            outbox.record(
                session,
                org_id,
                "face.match",
                f"customer:{customer_id}",
                "success" if match.match else "denied",
                details={
                    "verification_id": row.verification_id,
                    "score": round(match.score, 4),
                    "threshold": match.threshold,
                },
            )
            customers.settle(session, customer, "verification", row.verification_id)
            return Outcome(
                verification=records.verification_record(row), tier=customer.tier, match=match
            )

        return await self._commit(write)

    async def _live_frames(
        self, org_id: str, customer_id: str, verification_id: str, decode_bundle: Any
    ) -> tuple[list[bytes], list[bool]]:
        def load(session: Session) -> bytes:
            row = session.scalar(
                select(models.Verification).where(
                    models.Verification.org_id == org_id,
                    models.Verification.verification_id == verification_id,
                    models.Verification.customer_id == customer_id,
                )
            )
            if row is None or row.kind != tiers.FACE_LIVENESS:
                raise NotFound(
                    "no such face-liveness verification for this customer", "VERIFICATION_NOT_FOUND"
                )
            if row.outcome != "passed":
                raise FailedPrecondition(
                    "that liveness check did not pass",
                    "TIER_PREREQUISITE_MISSING",
                    {"missing": "face_liveness"},
                )
            bundle = session.scalar(
                select(models.CaptureBundle).where(
                    models.CaptureBundle.verification_id == verification_id
                )
            )
            if bundle is None:
                raise NotFound(
                    "the capture of that verification is no longer retained",
                    "VERIFICATION_NOT_FOUND",
                )
            return self.vault.open_bundle(session, bundle)

        raw = await self.database.run(load)
        return decode_bundle(raw)

    async def _embed_frames(
        self, frames: list[bytes], kind: str, baseline: list[bool] | None = None
    ) -> FaceEmbedding:
        face = await self.quality.assess_face(frames, kind, (), baseline or ())
        if face.crops is None:
            raise FailedPrecondition("no usable face was found in the image", "FACE_NOT_FOUND")
        return await self.embedder.embed(face.crops)

    async def list_enrollments(
        self, org_id: str, customer_id: str, include_retired: bool
    ) -> list[Any]:
        await self.database.run(lambda s: records.load_customer(s, org_id, customer_id))
        return await self.matcher.list_enrollments(customer_id, include_retired)

    # --- step-up ------------------------------------------------------------------

    async def step_up(
        self,
        org_id: str,
        customer_id: str,
        challenge_id: str,
        bundle: BundleInput,
        action: str,
        reference_image: bytes,
    ) -> Outcome:
        bundles.validate(bundle, challenge_id)
        if len(action) > 64:
            raise invalid_field("action", "must be at most 64 characters")
        await self._active_customer(org_id, customer_id)
        sha256 = bundles.digest(bundle, challenge_id)
        async with self._attempt(org_id, customer_id, tiers.STEP_UP, "stepup.decide"):
            await self._refuse_reused_nonce(org_id, bundle.attestation.nonce)
            if not reference_image:
                enrollments = await self.matcher.list_enrollments(
                    customer_id, include_retired=False
                )
                if not any(e.active for e in enrollments):
                    raise FailedPrecondition(
                        "the customer has no face reference to match against",
                        "NO_ACTIVE_ENROLLMENT",
                    )
            face = await self.quality.assess_face(
                bundle.frames, "selfie", bundle.offsets_ms, bundle.baseline
            )
            # Liveness and the probe embedding are independent: run them together.
            liveness_call = self.liveness.check(
                customer_id, "step_up", challenge_id, bundle.attestation, sha256, face
            )
            if face.crops is not None:
                decision, probe = await asyncio.gather(
                    liveness_call, self.embedder.embed(face.crops)
                )
            else:
                decision, probe = await liveness_call, None
            match = None
            if probe is not None:
                if reference_image:
                    reference = await self._embed_frames([reference_image], "reference")
                    match = await self.matcher.verify_reference(probe, reference)
                else:
                    match = await self.matcher.verify_enrolled(customer_id, probe)
        reasons = list(_liveness_reasons(face, decision))
        if match is not None and not match.match:
            reasons.append(Reason("FACE_MISMATCH", "the live face does not match the reference"))
        allow = bool(face.passed and decision.live and match is not None and match.match)

        def write(session: Session) -> Outcome:
            customer = records.load_customer(session, org_id, customer_id)
            row = records.add_verification(
                session,
                customer,
                tiers.STEP_UP,
                allow,
                reasons,
                scores={
                    "pad": decision.pad_score,
                    "flash": decision.flash_score,
                    **(_match_scores(match) if match else {}),
                },
                model_ids={
                    "detector": face.detector_model,
                    "decision_basis": decision.decision_basis,
                    **({"embedding": probe.model_id} if probe else {}),
                },
                input_hashes={"bundle": sha256, **_image_hashes(reference_image=reference_image)},
                details={
                    "action": action,
                    "reference": "partner_image" if reference_image else "enrolled",
                },
                nonce=bundle.attestation.nonce,
                bundle_sha256=sha256,
            )
            self._keep_capture(
                session,
                customer,
                row,
                bundle,
                sha256,
                "step_up",
                "stepup.decide",
                allow,
                reasons,
                action=action,
            )
            return Outcome(
                verification=records.verification_record(row),
                tier=customer.tier,
                liveness=decision,
                match=match,
                allow=allow,
                reasons=tuple(reasons),
                quality_reasons=face.reasons,
            )

        return await self._commit(write)

    # --- Dukcapil verdict and KYC ----------------------------------------------------

    async def submit_dukcapil_verdict(
        self, org_id: str, customer_id: str, verdict: Mapping[str, Any], signature: str
    ) -> Outcome:
        field_matches: Mapping[str, bool] = verdict["field_matches"]
        unknown = sorted(set(field_matches) - set(DUKCAPIL_FIELDS))
        if unknown:
            raise invalid_field(
                "verdict.field_matches", f"unknown field; allowed: {', '.join(DUKCAPIL_FIELDS)}"
            )
        if "nik" not in field_matches:
            raise invalid_field("verdict.field_matches", "must report the nik field")
        if not 1 <= len(verdict["reference"]) <= 128:
            raise invalid_field("verdict.reference", "must be 1 to 128 characters")
        verified_at = verdict["verified_at"]
        now = utcnow()
        if (
            verified_at is None
            or verified_at > now + CLOCK_SKEW
            or verified_at < now - DUKCAPIL_MAX_AGE
        ):
            raise invalid_field("verdict.verified_at", "must be within the last 30 days")
        document = signing.canonical_json(
            {
                "customer_id": customer_id,
                "field_matches": dict(sorted(field_matches.items())),
                "face_score": round(float(verdict["face_score"]), 6),
                "reference": verdict["reference"],
                "verified_at": verified_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
            }
        )
        evidence_sha256 = hashlib.sha256(document).hexdigest()
        await self._active_customer(org_id, customer_id)

        async with self._attempt(org_id, customer_id, tiers.DUKCAPIL_VERDICT, "dukcapil.submit"):
            secret = await self.database.run(lambda s: _evidence_secret(s, self.vault, org_id))
            if secret is not None and not signing.verify(secret, document, signature):
                raise PermissionDenied(
                    "the verdict's signature does not verify", "EVIDENCE_SIGNATURE_INVALID"
                )
        passed = all(
            field_matches.get(name, False)
            for name in DUKCAPIL_REQUIRED_FIELDS
            if name in field_matches
        )
        passed = passed and bool(field_matches.get("nik"))
        reasons = tuple(
            Reason(f"DUKCAPIL_{name.upper()}_MISMATCH")
            for name, ok in sorted(field_matches.items())
            if not ok
        )

        def write(session: Session) -> Outcome:
            customer = records.load_customer(session, org_id, customer_id, for_update=True)
            row = records.add_verification(
                session,
                customer,
                tiers.DUKCAPIL_VERDICT,
                passed,
                reasons,
                scores={"face_score": float(verdict["face_score"])},
                input_hashes={"verdict": evidence_sha256},
                details={"signed": secret is not None, "fields": sorted(field_matches)},
            )
            outbox.record(
                session,
                org_id,
                "dukcapil.submit",
                f"customer:{customer_id}",
                "success" if passed else "denied",
                evidence_hashes={"verdict": evidence_sha256},
                details={"verification_id": row.verification_id, "signed": secret is not None},
            )
            customers.settle(session, customer, "verification", row.verification_id)
            return Outcome(verification=records.verification_record(row), tier=customer.tier)

        return await self._commit(write)

    async def kyc_status(self, org_id: str, customer_id: str) -> tuple[tiers.TierStatus, Any]:
        def read(session: Session) -> tuple[tiers.TierStatus, Any]:
            customer = records.load_customer(session, org_id, customer_id)
            status = tiers.compute(
                records.evidence(session, customer), erased=customer.status == "erased"
            )
            return status, customer.tier_updated_at

        return await self.database.run(read)

    async def upgrade(
        self, org_id: str, customer_id: str, target: str, review_id: str, note: str
    ) -> tuple[str, records.TierChange | None]:
        if target not in tiers.TIERS or target == "none":
            raise invalid_field("target_tier", "must be basic, standard or premium")
        scopes = context.current().scopes if context.current() else ()
        if review_id and "internal" not in scopes:
            raise PermissionDenied(
                "citing a review decision needs an internal-scope key", "SCOPE_INSUFFICIENT"
            )

        def work(session: Session) -> tuple[str, records.TierChange | None]:
            customer = records.load_customer(session, org_id, customer_id, for_update=True)
            records.require_active(customer)
            if review_id:
                review = session.scalar(
                    select(models.ReviewItem).where(
                        models.ReviewItem.review_id == review_id,
                        models.ReviewItem.org_id == org_id,
                        models.ReviewItem.customer_id == customer_id,
                    )
                )
                if review is None:
                    raise NotFound("no such review item for this customer", "REVIEW_NOT_FOUND")
                if review.status != "approved":
                    raise FailedPrecondition(
                        "the review item is not approved",
                        "TIER_PREREQUISITE_MISSING",
                        {"missing": "approved_review"},
                    )
                row = records.add_verification(
                    session,
                    customer,
                    tiers.MANUAL_REVIEW,
                    True,
                    (),
                    details={
                        "granted_tier": target,
                        "review_id": review_id,
                        "note_present": bool(note),
                    },
                )
                change = customers.settle(session, customer, "review_decision", row.verification_id)
            else:
                status = tiers.compute(records.evidence(session, customer))
                if tiers.RANK[status.tier] < tiers.RANK[target]:
                    missing = tiers.missing_for(target, status.requirements)
                    raise FailedPrecondition(
                        f"the verification history does not reach {target}",
                        "TIER_PREREQUISITE_MISSING",
                        {"missing": ",".join(missing), "tier": status.tier},
                    )
                change = customers.settle(session, customer, "recompute")
            outbox.record(
                session,
                org_id,
                "kyc.upgrade",
                f"customer:{customer_id}",
                "success",
                details={"target_tier": target, "tier": customer.tier, "review_id": review_id},
            )
            return customer.tier, change

        return await self._commit(work)

    # --- erasure ------------------------------------------------------------------------

    async def erase(self, org_id: str, customer_id: str, reason: str) -> tuple[Any, int, int]:
        await self.database.run(lambda s: records.load_customer(s, org_id, customer_id))
        # Biometrics first: shredding is irreversible and idempotent, so a
        # failure below is repaired by calling erase again.
        retired = await self.matcher.retire(customer_id, "erasure")
        shredded = await self.matcher.shred(customer_id)

        def work(session: Session) -> tuple[Any, int, int]:
            customer = records.load_customer(session, org_id, customer_id, for_update=True)
            destroyed = shredded
            if customer.status != "erased":
                destroyed += customers.erase_personal_data(session, self.vault, customer)
                customers.settle(session, customer, "erasure")
            outbox.record(
                session,
                org_id,
                "customer.erase",
                f"customer:{customer_id}",
                "success",
                details={
                    "reason": reason[:64],
                    "enrollments_retired": retired,
                    "keys_destroyed": destroyed,
                },
            )
            return customer.erased_at, retired, destroyed

        return await self._commit(work)


def _liveness_reasons(face: FaceAssessment, decision: LivenessDecision) -> tuple[Reason, ...]:
    reasons: list[Reason] = []
    if not face.face_found:
        reasons.append(Reason("FACE_NOT_FOUND", "no face in the capture"))
    elif not face.passed:
        reasons.append(Reason("QUALITY_FAILED", "the capture does not meet the quality profile"))
        reasons.extend(face.reasons)
    if not decision.live:
        reasons.extend(
            decision.reasons or (Reason("LIVENESS_FAILED", "the capture is not judged live"),)
        )
    return tuple(reasons)


def _match_scores(match: MatchResult) -> dict[str, float]:
    return {
        "match": match.score,
        "match_threshold": match.threshold,
        "estimated_false_match_rate": match.estimated_false_match_rate,
    }


def _image_hashes(**images: bytes) -> dict[str, str]:
    return {name: hashlib.sha256(data).hexdigest() for name, data in images.items() if data}


def _field_checks(card: KtpAssessment, submitted: Mapping[str, str]) -> tuple[dict[str, Any], ...]:
    """Per field: OCR confidence and agreement with the submission (names only)."""
    checks = []
    for name, value in sorted(card.fields.items()):
        given = submitted.get(name, "")
        checks.append(
            {
                "name": name,
                "ocr_confidence": round(value.confidence, 4),
                "matches_submitted": bool(given) and _normalise(given) == _normalise(value.value),
            }
        )
    return tuple(checks)


def _normalise(text: str) -> str:
    return " ".join(text.upper().split())


def _evidence_secret(session: Session, vault: PiiVault, org_id: str) -> bytes | None:
    org = session.get(models.Org, org_id)
    if org is None or org.evidence_secret_sealed is None:
        return None
    return vault.open_org_secret(session, org)
