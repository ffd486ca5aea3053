"""OCR of the rectified card with RapidOCR's bundled PP-OCR models.

The models ship inside the pinned `rapidocr==3.10.0` wheel; nothing is
downloaded. Each file's sha256 is checked before it is loaded and the
engine refuses to start when one differs. The ONNX Runtime sessions are
then re-created from the verified bytes with the thread count this service
was given and without spinning threads (RapidOCR's own sessions spin, which
on a 2-core machine slows everything else down).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np
import onnxruntime as ort

from identity_ktp.portrait import verified_model_bytes
from identity_runtime import metrics

# The bundled files of rapidocr 3.10.0 (the same hashes RapidOCR's own model
# registry, default_models.yaml, lists for them).
RAPIDOCR_MODELS = {
    "det": (
        "PP-OCRv6_det_small.onnx",
        "090f04abcd9d9a7498bc4ebf677e4cb9bdce1fe4197ddb7e529f1ef44e1ff94f",
    ),
    "cls": (
        "ch_ppocr_mobile_v2.0_cls_mobile.onnx",
        "e47acedf663230f8863ff1ab0e64dd2d82b838fceb5957146dab185a89d6215c",
    ),
    "rec": (
        "PP-OCRv6_rec_small.onnx",
        "6f327246b50388f3c176ae304bd95767ea6dc0c9ae92153ef8cbe210b3c14884",
    ),
}
OCR_MODEL_ID = "rapidocr-3.10.0/PP-OCRv6-small"


@dataclass(frozen=True)
class OcrLine:
    text: str
    confidence: float
    # Four corners (clockwise from top-left) in the image OCR ran on.
    box: tuple[tuple[float, float], ...]

    @property
    def left(self) -> float:
        return min(p[0] for p in self.box)

    @property
    def right(self) -> float:
        return max(p[0] for p in self.box)

    @property
    def top(self) -> float:
        return min(p[1] for p in self.box)

    @property
    def bottom(self) -> float:
        return max(p[1] for p in self.box)

    @property
    def centre_y(self) -> float:
        return (self.top + self.bottom) / 2

    @property
    def height(self) -> float:
        return self.bottom - self.top


def rapidocr_model_dir() -> Path:
    return Path(str(resources.files("rapidocr").joinpath("models")))


def _session(data: bytes, threads: int) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.add_session_config_entry("session.inter_op.allow_spinning", "0")
    options.log_severity_level = 3
    return ort.InferenceSession(data, sess_options=options, providers=["CPUExecutionProvider"])


class OcrEngine:
    """RapidOCR over verified models; one recognition at a time per engine."""

    def __init__(self, *, threads: int = 2, model_dir: Path | None = None):
        from rapidocr import RapidOCR

        model_dir = model_dir or rapidocr_model_dir()
        verified = {
            role: verified_model_bytes(model_dir / name, sha256, f"OCR {role} model")
            for role, (name, sha256) in RAPIDOCR_MODELS.items()
        }
        self._engine = RapidOCR(
            params={
                "Global.log_level": "error",
                "Det.model_path": str(model_dir / RAPIDOCR_MODELS["det"][0]),
                "Cls.model_path": str(model_dir / RAPIDOCR_MODELS["cls"][0]),
                "Rec.model_path": str(model_dir / RAPIDOCR_MODELS["rec"][0]),
                "EngineConfig.onnxruntime.intra_op_num_threads": 1,
                "EngineConfig.onnxruntime.inter_op_num_threads": 1,
            }
        )
        # Load RapidOCR's wrappers (they read the character table from the
        # model), then swap in sessions built from the verified bytes.
        loaded = {
            "det": self._engine._load_det_model(),
            "cls": self._engine._load_cls_model(),
            "rec": self._engine._load_rec_model(),
        }
        for role, wrapper in loaded.items():
            wrapper.session.session = _session(verified[role], threads)
        self._lock = threading.Lock()
        self.model_id = OCR_MODEL_ID

    def sessions(self) -> list[ort.InferenceSession]:
        """The ONNX Runtime sessions in use (for tests)."""
        engine = self._engine
        # The loaders return the wrappers loaded in __init__.
        return [
            engine._load_det_model().session.session,
            engine._load_cls_model().session.session,
            engine._load_rec_model().session.session,
        ]

    def read(self, image: np.ndarray) -> list[OcrLine]:
        """Every text line found in `image` (BGR), top to bottom."""
        from rapidocr.utils.output import RapidOCROutput

        with self._lock, metrics.model_stage("ocr", "pp-ocr", "onnxruntime"):
            result = self._engine(image)
        if (
            not isinstance(result, RapidOCROutput)
            or result.boxes is None
            or result.txts is None
            or result.scores is None
        ):
            return []
        lines = [
            OcrLine(
                str(text).strip(),
                float(score),
                tuple((float(x), float(y)) for x, y in np.asarray(box).reshape(4, 2)),
            )
            for box, text, score in zip(result.boxes, result.txts, result.scores, strict=True)
            if str(text).strip()
        ]
        lines.sort(key=lambda line: (line.centre_y, line.left))
        return lines

    def recognise_line(self, image: np.ndarray) -> OcrLine | None:
        """One text line (BGR image of that line alone) through the
        recogniser only: no detection, no direction classifier."""
        from rapidocr.main import RapidOCRError

        with self._lock:
            try:
                result = self._engine.recognize_txt([image])
            except RapidOCRError:  # nothing recognised
                return None
        if not result.txts:
            return None
        height, width = image.shape[:2]
        box = ((0.0, 0.0), (float(width), 0.0), (float(width), float(height)), (0.0, float(height)))
        return OcrLine(str(result.txts[0]).strip(), float(result.scores[0]), box)
