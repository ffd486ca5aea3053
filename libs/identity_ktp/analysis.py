"""KTP card analysis: card, quality, portrait, OCR, NIK, cross-checks, tamper cues.

`KtpAnalyzer.analyze` takes a decoded photo (BGR) and returns a `KtpReport`
that holds no NIK outside `fields` (the OCR'd values the caller asked for):
signal details and reason messages name fields and rules, never values.
"""

from __future__ import annotations

import datetime as dt
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace

import cv2
import numpy as np

from identity_inference.quality import Measure
from identity_ktp import fields as f
from identity_ktp.card import (
    CARD_HEIGHT,
    CARD_WIDTH,
    TEXT_AREA,
    CardLocation,
    find_card,
    rectify,
    relative_glare,
    rotate_half_turn,
    text_sharpness,
)
from identity_ktp.compare import MISMATCH, compare_field
from identity_ktp.confirm import (
    NikConfirmation,
    highlighted_rows,
    regions_agree,
    second_nik_read,
)
from identity_ktp.fields import FieldValue, ParsedCard, parse_card
from identity_ktp.flash import Bgr, card_colour, reflects_flash
from identity_ktp.layout import PORTRAIT_ZONE, LayoutReport, check_layout
from identity_ktp.nik import FEMALE, MALE, RULE_MESSAGES, NikCheck, validate_nik
from identity_ktp.ocr import OcrEngine
from identity_ktp.portrait import Face, PortraitFinder, align_face
from identity_ktp.recapture import (
    PHOTOCOPY_CHROMA_MAX,
    RecaptureCues,
    portrait_chroma,
    recapture_cues,
)
from identity_ktp.regions import RegionIndex
from identity_ktp.thresholds import Thresholds

# Tamper signal codes (TamperSignal.code).
NIK_MISMATCH_SUBMITTED = "NIK_MISMATCH_SUBMITTED"
NIK_BIRTH_DATE_MISMATCH = "NIK_BIRTH_DATE_MISMATCH"
NIK_GENDER_MISMATCH = "NIK_GENDER_MISMATCH"
PORTRAIT_MISSING = "PORTRAIT_MISSING"
LAYOUT_INCONSISTENT = "LAYOUT_INCONSISTENT"
SCREEN_RECAPTURE_SUSPECTED = "SCREEN_RECAPTURE_SUSPECTED"
HALFTONE_PRINT_SUSPECTED = "HALFTONE_PRINT_SUSPECTED"
PHOTOCOPY_SUSPECTED = "PHOTOCOPY_SUSPECTED"
FIELD_MISMATCH_SUBMITTED = "FIELD_MISMATCH_SUBMITTED"

# Other reason codes of a failed check.
CARD_NOT_FOUND = "CARD_NOT_FOUND"
CARD_TOO_BLURRY = "CARD_TOO_BLURRY"
CARD_GLARE = "CARD_GLARE"
CARD_TOO_SMALL = "CARD_TOO_SMALL"
# Retake: a side of the card's outline is the photo's border.
CARD_PARTIALLY_OUTSIDE = "CARD_PARTIALLY_OUTSIDE"
NIK_UNREADABLE = "NIK_UNREADABLE"
FIELD_MISSING = "FIELD_MISSING"
FIELD_LOW_CONFIDENCE = "FIELD_LOW_CONFIDENCE"
# Retake: a highlight covers the NIK, name or birth-date row.
CARD_HIGHLIGHT_ON_TEXT = "CARD_HIGHLIGHT_ON_TEXT"
# Retake: two independent reads of the NIK row differ.
NIK_READS_DISAGREE = "NIK_READS_DISAGREE"
# No partner NIK and the card's NIK is not confirmed: not kept.
NIK_UNCONFIRMED = "NIK_UNCONFIRMED"
# Reasons that ask for another photo (the capture, not the card, is at fault).
RETAKE_REASONS = (
    "CARD_TOO_BLURRY",
    "CARD_GLARE",
    "CARD_TOO_SMALL",
    CARD_PARTIALLY_OUTSIDE,
    CARD_HIGHLIGHT_ON_TEXT,
    NIK_READS_DISAGREE,
)

# A photo accepted as a tight crop of the card must show this many KTP labels.
MIN_LABELS_FOR_FRAME = 4
_GENDER_OF_PRINTED = {"PEREMPUAN": FEMALE, "LAKI-LAKI": MALE}
# Fields whose low OCR confidence fails the check: identity depends on them.
_KEY_FIELDS = (f.NIK, f.NAME, f.BIRTH_DATE)


@dataclass(frozen=True)
class Signal:
    code: str
    score: float
    decisive: bool
    detail: str


@dataclass(frozen=True)
class Reason:
    code: str
    message: str


@dataclass
class KtpReport:
    card_found: bool = False
    # Card corners in the input image, clockwise from top-left.
    card_corners: tuple[tuple[float, float], ...] = ()
    measures: list[Measure] = field(default_factory=list)
    # The portrait's face in input-image coordinates.
    portrait: Face | None = None
    aligned_portrait: np.ndarray | None = None
    fields: dict[str, FieldValue] = field(default_factory=dict)
    nik: NikCheck | None = None
    signals: list[Signal] = field(default_factory=list)
    passed: bool = False
    reasons: list[Reason] = field(default_factory=list)
    ocr_model: str = ""
    layout: LayoutReport | None = None
    recapture: RecaptureCues | None = None
    # Lab chroma (p75) of the portrait zone: none on a monochrome copy.
    portrait_chroma: float | None = None
    # Whether the card's NIK read is confirmed (None: no NIK was read).
    confirmation: NikConfirmation | None = None
    # Seconds per stage: card, portrait, quality, ocr, parse, checks.
    timings: dict[str, float] = field(default_factory=dict)
    # (card, background) mean BGR on each flash frame (identity_ktp.flash).
    flash_colours: list[tuple[Bgr, Bgr]] = field(default_factory=list)

    @property
    def nik_confirmed(self) -> bool:
        """The NIK was read twice alike, with no highlight on the key rows,
        and its regions are the printed ones: it may be kept without a
        partner-submitted NIK."""
        return self.confirmation is not None and self.confirmation.confirmed

    def __repr__(self) -> str:  # never print field values
        return (
            f"KtpReport(card_found={self.card_found}, passed={self.passed}, "
            f"reasons={[r.code for r in self.reasons]})"
        )


def _to_input(points: np.ndarray, inverse: np.ndarray) -> np.ndarray:
    return cv2.perspectiveTransform(points.reshape(-1, 1, 2).astype(np.float32), inverse).reshape(
        -1, 2
    )


def _face_in_input(face: Face, inverse: np.ndarray) -> Face:
    x, y, w, h = face.box
    corners = _to_input(np.array([[x, y], [x + w, y], [x + w, y + h], [x, y + h]]), inverse)
    landmarks = _to_input(np.array(face.landmarks), inverse)
    x0, y0 = corners.min(axis=0)
    x1, y1 = corners.max(axis=0)
    return Face(
        (float(x0), float(y0), float(x1 - x0), float(y1 - y0)),
        tuple((float(px), float(py)) for px, py in landmarks),
        face.confidence,
    )


def _portrait_side(faces: list[Face]) -> Face | None:
    """The largest face on the right half, where the KTP portrait is."""
    for face in faces:
        x, _, w, _ = face.box
        if x + w / 2 > CARD_WIDTH / 2:
            return face
    return None


class KtpAnalyzer:
    """Analyses KTP photos. Not thread-safe: run one call at a time."""

    def __init__(
        self,
        ocr: OcrEngine,
        portraits: PortraitFinder,
        regions: RegionIndex,
        thresholds: Thresholds | None = None,
    ):
        self.ocr = ocr
        self.portraits = portraits
        self.regions = regions
        self.thresholds = thresholds or Thresholds()

    def analyze(
        self,
        image: np.ndarray,
        *,
        submitted_nik: str = "",
        submitted_fields: Mapping[str, str] | None = None,
        include_portrait_crop: bool = False,
        today: dt.date | None = None,
        flash_frames: Sequence[np.ndarray] = (),
    ) -> KtpReport:
        """`flash_frames`: the capture's frames under the challenge's colours
        (any size); the card's colour on each goes to `flash_colours`, and
        whether it moved tells a print from a screen."""
        report = KtpReport(ocr_model=self.ocr.model_id)
        clock = time.perf_counter()

        def lap(stage: str) -> None:
            nonlocal clock
            now = time.perf_counter()
            report.timings[stage] = now - clock
            clock = now

        location = find_card(image)
        report.flash_colours = [
            card_colour(frame, location.corners if location else (), image.shape[:2])
            for frame in flash_frames
        ]
        if location is None:
            lap("card")
            report.reasons.append(
                Reason(CARD_NOT_FOUND, "no ID-1 card outline was found in the photo")
            )
            return report
        if location.touches_border:
            # Never read a cut card stretched to ID-1: its fields and
            # portrait would be someone's guess.
            lap("card")
            report.card_corners = location.corners
            report.reasons.append(
                Reason(
                    CARD_PARTIALLY_OUTSIDE,
                    "a side of the card lies on the photo's border; "
                    "retake with the whole card inside the frame",
                )
            )
            return report
        card = rectify(image, location.corners)
        corners = location.corners
        lap("card")

        faces = self.portraits.detect(card)
        face = _portrait_side(faces)
        if face is None:
            # Upside down? The portrait is on the right of an upright card.
            turned, turned_corners = rotate_half_turn(card, corners)
            turned_face = _portrait_side(self.portraits.detect(turned))
            if turned_face is not None:
                card, corners, face = turned, turned_corners, turned_face
        report.card_found = True
        report.card_corners = corners
        homography = cv2.getPerspectiveTransform(
            np.array(corners, dtype=np.float32),
            np.array(
                [
                    [0, 0],
                    [CARD_WIDTH - 1, 0],
                    [CARD_WIDTH - 1, CARD_HEIGHT - 1],
                    [0, CARD_HEIGHT - 1],
                ],
                dtype=np.float32,
            ),
        )
        inverse = np.linalg.inv(homography)
        if face is not None:
            report.portrait = _face_in_input(face, inverse)
            if include_portrait_crop:
                report.aligned_portrait = align_face(image, report.portrait)
        lap("portrait")

        report.measures = self._measures(card, location)
        # The outline as found (image orientation), whatever way up the card is.
        report.recapture = recapture_cues(image, location.corners)
        report.portrait_chroma = portrait_chroma(card, PORTRAIT_ZONE)
        lap("quality")

        lines = self.ocr.read(card)
        lap("ocr")
        parsed = parse_card(lines, CARD_WIDTH)
        if location.method == "frame" and len(parsed.label_boxes) < MIN_LABELS_FOR_FRAME:
            # No outline and nothing KTP-like written on it: not a card scan.
            lap("parse")
            return KtpReport(
                ocr_model=self.ocr.model_id,
                reasons=[
                    Reason(CARD_NOT_FOUND, "no card outline, and the photo does not read as a KTP")
                ],
                timings=report.timings,
                flash_colours=report.flash_colours,
            )
        report.fields = parsed.fields
        nik_field = parsed.fields.get(f.NIK)
        if nik_field is not None:
            report.nik = validate_nik(nik_field.value, today=today, regions=self.regions)
        report.layout = check_layout(parsed, face, CARD_WIDTH, CARD_HEIGHT)
        lap("parse")

        report.confirmation = self._confirm(report, image, card, inverse, parsed)
        lap("confirm")

        self._cross_check(report, submitted_nik, submitted_fields or {})
        self._verdict(report, submitted_nik)
        lap("checks")
        return report

    def _confirm(
        self,
        report: KtpReport,
        image: np.ndarray,
        card: np.ndarray,
        inverse: np.ndarray,
        parsed: ParsedCard,
    ) -> NikConfirmation | None:
        """Highlight on the key rows, a second NIK read, NIK regions vs header."""
        nik_field = report.fields.get(f.NIK)
        rows = highlighted_rows(card, parsed)
        if nik_field is None:
            return NikConfirmation(rows, None, None) if rows else None
        second = second_nik_read(self.ocr, image, inverse, parsed)
        agrees = None if second is None else second == nik_field.value
        return NikConfirmation(rows, agrees, regions_agree(report.nik, report.fields, self.regions))

    def _measures(self, card: np.ndarray, location: CardLocation) -> list[Measure]:
        limits = self.thresholds
        sharpness = text_sharpness(card)
        height, width = card.shape[:2]

        def zone(box: tuple[float, float, float, float]) -> np.ndarray:
            x0, y0, x1, y1 = box
            return card[int(y0 * height) : int(y1 * height), int(x0 * width) : int(x1 * width)]

        glare = max(relative_glare(zone(TEXT_AREA)), relative_glare(zone(PORTRAIT_ZONE)))
        return [
            Measure(
                "card_text_sharpness",
                sharpness,
                f">= {limits.sharpness_min:g}",
                sharpness >= limits.sharpness_min,
                "" if sharpness >= limits.sharpness_min else CARD_TOO_BLURRY,
            ),
            Measure(
                "card_glare_ratio",
                glare,
                f"<= {limits.glare_max:g}",
                glare <= limits.glare_max,
                "" if glare <= limits.glare_max else CARD_GLARE,
            ),
            Measure(
                "card_width_px",
                location.width_px,
                f">= {limits.card_width_min:g}",
                location.width_px >= limits.card_width_min,
                "" if location.width_px >= limits.card_width_min else CARD_TOO_SMALL,
            ),
        ]

    def _poor_capture(self, report: KtpReport) -> bool:
        """A gate refused the photo or the NIK reads are in doubt: OCR-derived
        contradictions and a missing portrait are then the capture's fault as
        likely as the card's, so they are reported but not decisive."""
        confirmation = report.confirmation
        return any(not m.passed for m in report.measures) or (
            confirmation is not None
            and (bool(confirmation.highlighted_rows) or confirmation.second_read_agrees is False)
        )

    def _cross_check(
        self, report: KtpReport, submitted_nik: str, submitted: Mapping[str, str]
    ) -> None:
        limits = self.thresholds
        fields_read = report.fields
        nik_field = fields_read.get(f.NIK)
        nik = report.nik

        if submitted_nik and nik_field is not None and len(nik_field.value) == 16:
            differing = sum(
                a != b for a, b in zip(submitted_nik, nik_field.value, strict=False)
            ) + abs(len(submitted_nik) - len(nik_field.value))
            if differing:
                # A misread card NIK usually fails its own structure; only a
                # structurally valid one contradicts the submission reliably.
                decisive = nik is not None and nik.valid
                report.signals.append(
                    Signal(
                        NIK_MISMATCH_SUBMITTED,
                        1.0 if decisive else round(nik_field.confidence * 0.5, 3),
                        decisive,
                        f"the submitted NIK differs from the card's in {differing} of 16 digits",
                    )
                )

        if nik is not None and nik.birth_date is not None:
            printed = fields_read.get(f.BIRTH_DATE)
            if printed is not None and re.fullmatch(r"\d{2}-\d{2}-\d{4}", printed.value):
                day, month, year = (int(part) for part in printed.value.split("-"))
                encoded = nik.birth_date
                if (day, month, year % 100) != (encoded.day, encoded.month, encoded.year % 100):
                    confidence = min(printed.confidence, nik_field.confidence if nik_field else 0.0)
                    decisive = confidence >= limits.decisive_confidence
                    report.signals.append(
                        Signal(
                            NIK_BIRTH_DATE_MISMATCH,
                            round(confidence, 3),
                            decisive,
                            "the birth date encoded in the NIK differs from the printed one",
                        )
                    )
            printed_gender = fields_read.get(f.GENDER)
            if printed_gender is not None and printed_gender.value in _GENDER_OF_PRINTED:
                if _GENDER_OF_PRINTED[printed_gender.value] != nik.gender:
                    confidence = min(
                        printed_gender.confidence, nik_field.confidence if nik_field else 0.0
                    )
                    decisive = confidence >= limits.decisive_confidence
                    report.signals.append(
                        Signal(
                            NIK_GENDER_MISMATCH,
                            round(confidence, 3),
                            decisive,
                            "the gender encoded in the NIK (day + 40 for women) "
                            "differs from the printed one",
                        )
                    )

        for name in sorted(submitted):
            read = fields_read.get(name)
            comparison = compare_field(
                name,
                submitted[name],
                read.value if read is not None else None,
                limits.field_similarity_min,
            )
            if comparison.status == MISMATCH and comparison.score is not None:
                report.signals.append(
                    Signal(
                        FIELD_MISMATCH_SUBMITTED,
                        round(1.0 - comparison.score, 3),
                        False,
                        f"submitted field '{name}' differs from the card "
                        f"(similarity {comparison.score:.2f})",
                    )
                )

        if report.portrait is None:
            report.signals.append(
                Signal(
                    PORTRAIT_MISSING,
                    1.0,
                    True,
                    "no face was found in the portrait area of the card",
                )
            )

        layout = report.layout
        if layout is not None and layout.inconsistent:
            detail = (
                "failed layout checks: " + ", ".join(layout.failed)
                if layout.failed
                else "layout checks failed"
            )
            report.signals.append(
                Signal(
                    LAYOUT_INCONSISTENT,
                    round(max(layout.score, 0.5 if layout.portrait_in_place is False else 0.0), 3),
                    False,
                    detail,
                )
            )

        cues = report.recapture
        if cues is not None and cues.score >= limits.screen_score_min:
            code, medium = _recaptured_medium(report.flash_colours)
            report.signals.append(
                Signal(
                    code,
                    round(cues.score, 3),
                    # Demoted below when the capture is poor (motion blur
                    # also puts periodic peaks in the spectrum).
                    cues.score >= limits.screen_score_decisive,
                    f"periodic spectrum peak {cues.moire_prominence:.1f} (log units), "
                    f"grey-level gaps {cues.banding_ratio:.2f}; {medium}",
                )
            )

        chroma = report.portrait_chroma
        if chroma is not None and chroma < PHOTOCOPY_CHROMA_MAX:
            report.signals.append(
                Signal(
                    PHOTOCOPY_SUSPECTED,
                    round(1.0 - chroma / PHOTOCOPY_CHROMA_MAX, 3),
                    True,
                    f"the portrait is not in colour (chroma {chroma:.1f} < "
                    f"{PHOTOCOPY_CHROMA_MAX:g}): a monochrome copy of the card",
                )
            )

        if self._poor_capture(report):
            report.signals = [
                replace(
                    signal,
                    decisive=False,
                    detail=signal.detail + " (not decisive: the photo needs a retake)",
                )
                if signal.decisive
                else signal
                for signal in report.signals
            ]

    def _verdict(self, report: KtpReport, submitted_nik: str = "") -> None:
        limits = self.thresholds
        reasons = report.reasons
        for measure in report.measures:
            if not measure.passed:
                reasons.append(
                    Reason(
                        measure.reason_code,
                        f"{measure.name} {measure.value:.3g} is outside {measure.threshold}",
                    )
                )
        if report.nik is None:
            reasons.append(Reason(NIK_UNREADABLE, "the card's NIK row could not be read"))
        elif not report.nik.valid:
            reasons.extend(Reason(rule, RULE_MESSAGES[rule]) for rule in report.nik.reasons)
        missing = [name for name in f.REQUIRED_FIELDS if name not in report.fields]
        if missing:
            reasons.append(Reason(FIELD_MISSING, "fields not read: " + ", ".join(missing)))
        weak = [
            name
            for name in _KEY_FIELDS
            if name in report.fields
            and report.fields[name].confidence < limits.field_min_confidence
        ]
        if weak:
            reasons.append(
                Reason(FIELD_LOW_CONFIDENCE, "fields read with low confidence: " + ", ".join(weak))
            )
        confirmation = report.confirmation
        nik_field = report.fields.get(f.NIK)
        if confirmation is not None and confirmation.highlighted_rows:
            reasons.append(
                Reason(
                    CARD_HIGHLIGHT_ON_TEXT,
                    "a highlight covers the "
                    + ", ".join(confirmation.highlighted_rows)
                    + " row; retake the photo without the reflection (tilt the card slightly)",
                )
            )
        partner_confirms = bool(
            submitted_nik and nik_field is not None and submitted_nik == nik_field.value
        )
        if confirmation is not None and nik_field is not None and not partner_confirms:
            if confirmation.second_read_agrees is False:
                reasons.append(
                    Reason(
                        NIK_READS_DISAGREE,
                        "two independent reads of the NIK row differ; retake the photo "
                        "closer, sharp and without reflections",
                    )
                )
            if not submitted_nik and not confirmation.confirmed:
                reasons.append(
                    Reason(
                        NIK_UNCONFIRMED,
                        "the NIK read from the card is not confirmed ("
                        + "; ".join(confirmation.unconfirmed_because())
                        + "), so it is not kept: retake the photo, or send the customer's "
                        "NIK as submitted_nik",
                    )
                )
        reasons.extend(
            Reason(signal.code, signal.detail) for signal in report.signals if signal.decisive
        )
        report.passed = report.card_found and not reasons


def _recaptured_medium(flash_colours: Sequence[tuple[Bgr, Bgr]]) -> tuple[str, str]:
    """What a periodic pattern on the card was printed or shown on: paper
    reflects the flash (a halftone print), a screen emits its own light and
    barely does; without flash frames the medium is unknown (named a screen,
    the likelier attack)."""
    if not flash_colours:
        return SCREEN_RECAPTURE_SUSPECTED, "medium unknown (no flash frames)"
    if reflects_flash([card for card, _ in flash_colours]):
        return HALFTONE_PRINT_SUSPECTED, "the card reflects the flash: a halftone print"
    return SCREEN_RECAPTURE_SUSPECTED, "the card barely answers the flash: a screen"
