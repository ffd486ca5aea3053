"""Face detection with five landmarks (YuNet), decoded as OpenCV's FaceDetectorYN does.

The graph's input is fixed at 640x640: the frame is scaled so that its long
side is 640 and placed top-left on a zero canvas (a letterbox), the raw
anchor-free heads are decoded per stride, scored sqrt(cls * obj), filtered by
the manifest's score threshold and non-maximum suppressed, then mapped back
to frame coordinates. Landmarks come out in ArcFace template order.

Re-detection near a known face (`detect_near`, the flash frames of a
capture whose baseline frame was fully detected): the region of interest,
`ROI_CONTEXT` x the known box around its centre, is letterboxed into a
second session of the same graph with its input fixed at `ROI_INPUT_SIZE`
(the graph is fully convolutional; measured ~15x cheaper than 640: see
docs/performance.md, "Detect once"). The answer counts only when it is
conclusive: a face whose predicted box lies inside the region (off its
edges, unless that edge is the frame's) at 0.6-1.6x the known face's
width; otherwise the caller detects the whole frame.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import cv2
import numpy as np

from identity_inference.manifest import ModelManifest

if TYPE_CHECKING:
    # Not at run time: the Triton pipeline model imports this module without
    # ONNX Runtime's runner machinery (deploy/triton/face_pipeline_model.py).
    from identity_inference.runners import Runner


@dataclass(frozen=True)
class Face:
    """A detected face in frame pixels."""

    # x, y, width, height.
    box: tuple[float, float, float, float]
    # (5, 2): image-left eye, image-right eye, nose, image-left mouth, image-right mouth.
    landmarks: np.ndarray
    score: float
    # The box as predicted, before clipping to the frame (x, y, w, h): a box
    # reaching past the frame's edge means the face is cut off there.
    predicted_box: tuple[float, float, float, float] | None = None

    @property
    def area(self) -> float:
        return self.box[2] * self.box[3]

    @property
    def centre(self) -> tuple[float, float]:
        x, y, w, h = self.box
        return x + w / 2, y + h / 2


# The region of interest around a known face: this many times its box.
ROI_CONTEXT = 2.5
# The square input of the region-of-interest session (a multiple of 32).
ROI_INPUT_SIZE = 256
# A re-detected face is the known one when its width is within this ratio.
_ROI_SIZE_RATIO = (0.6, 1.6)
# ... and its predicted box keeps this share of its size off the region's edges.
_ROI_EDGE_MARGIN = 0.05


def roi_box(
    box: tuple[float, float, float, float], width: int, height: int, context: float = ROI_CONTEXT
) -> tuple[int, int, int, int]:
    """A square of `context` x the box's long side around its centre, clipped
    to the frame: x0, y0, x1, y1 in frame pixels."""
    x, y, w, h = box
    side = context * max(w, h)
    cx, cy = x + w / 2, y + h / 2
    x0, y0 = max(0, int(cx - side / 2)), max(0, int(cy - side / 2))
    x1, y1 = min(width, int(round(cx + side / 2))), min(height, int(round(cy + side / 2)))
    return x0, y0, max(x1, x0 + 1), max(y1, y0 + 1)


class FaceDetector:
    def __init__(self, runner: Runner, roi_runner: Runner | None = None):
        self.runner = runner
        # The same graph at ROI_INPUT_SIZE (None: detect_near always defers to detect).
        self.roi_runner = roi_runner
        manifest: ModelManifest = runner.manifest
        self.manifest = manifest
        self.input_size = int(manifest.parameter("input_size", 640))
        self.strides = tuple(int(s) for s in manifest.parameter("strides", (8, 16, 32)))
        self.score_threshold = manifest.threshold("score")
        self.nms_threshold = float(manifest.parameter("nms_threshold", 0.3))
        self.top_k = int(manifest.parameter("top_k", 50))

    @property
    def model_id(self) -> str:
        return f"{self.manifest.id}@{self.manifest.version}"

    def _scaled(self, image: np.ndarray, size: int) -> tuple[np.ndarray, float]:
        """The image scaled so that its long side is `size`, and the scale."""
        height, width = image.shape[:2]
        scale = size / max(height, width)
        new_w, new_h = max(1, round(width * scale)), max(1, round(height * scale))
        if (new_w, new_h) == (width, height):
            # What cv2.resize returns for the same size: the pixels as they are.
            return image, scale
        interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
        return cv2.resize(image, (new_w, new_h), interpolation=interpolation), scale

    def letterbox(self, image: np.ndarray, size: int | None = None) -> tuple[np.ndarray, float]:
        """The image scaled into the top-left of a size (default: the input size)
        square, and the scale."""
        size = size or self.input_size
        resized, scale = self._scaled(image, size)
        canvas = np.zeros((size, size, 3), dtype=np.uint8)
        canvas[: resized.shape[0], : resized.shape[1]] = resized
        return canvas, scale

    @staticmethod
    def to_blob(canvas: np.ndarray) -> np.ndarray:
        return canvas.transpose(2, 0, 1)[None].astype(np.float32)

    def letterbox_blob(
        self, image: np.ndarray, size: int | None = None
    ) -> tuple[np.ndarray, float]:
        """to_blob(letterbox(image, size)) in one pass, the same values: each
        colour plane goes straight into its float slot (no uint8 canvas, no
        strided float copy of the whole square)."""
        size = size or self.input_size
        resized, scale = self._scaled(image, size)
        height, width = resized.shape[:2]
        blob = np.empty((1, 3, size, size), dtype=np.float32)
        for channel, plane in enumerate(cv2.split(resized)):
            blob[0, channel, :height, :width] = plane
        # Only the letterbox's padding is zeroed (none for a square at the input size).
        blob[0, :, height:, :] = 0.0
        blob[0, :, :height, width:] = 0.0
        return blob, scale

    def detect(self, image: np.ndarray) -> list[Face]:
        """Faces in a BGR frame, largest first."""
        blob, scale = self.letterbox_blob(image)
        outputs = self.runner.infer(blob)
        return self.decode(outputs, scale, image.shape[1], image.shape[0])

    def detect_near(self, image: np.ndarray, known: Face) -> list[Face] | None:
        """Faces in a BGR frame found in the region of interest around `known`
        (a face of a near-identical frame), largest first, in frame pixels; None
        when that is not conclusive (no region session, no face in the region,
        the face at the region's edge or of another size): detect the frame."""
        if self.roi_runner is None:
            return None
        height, width = image.shape[:2]
        x0, y0, x1, y1 = roi_box(known.box, width, height)
        blob, scale = self.letterbox_blob(image[y0:y1, x0:x1], ROI_INPUT_SIZE)
        outputs = self.roi_runner.infer(blob)
        faces = self.decode(
            outputs, scale, width, height, input_size=ROI_INPUT_SIZE, origin=(x0, y0)
        )
        if not faces:
            return None
        px, py, pw, ph = faces[0].predicted_box or faces[0].box
        ratio = pw / max(known.box[2], 1e-6)
        if not _ROI_SIZE_RATIO[0] <= ratio <= _ROI_SIZE_RATIO[1]:
            return None
        margin_x, margin_y = _ROI_EDGE_MARGIN * pw, _ROI_EDGE_MARGIN * ph
        # A region edge that is not the frame's edge must stay clear of the face.
        if (
            (x0 > 0 and px < x0 + margin_x)
            or (y0 > 0 and py < y0 + margin_y)
            or (x1 < width and px + pw > x1 - margin_x)
            or (y1 < height and py + ph > y1 - margin_y)
        ):
            return None
        return faces

    def decode(
        self,
        outputs: dict[str, np.ndarray],
        scale: float,
        width: int,
        height: int,
        *,
        input_size: int | None = None,
        origin: tuple[int, int] = (0, 0),
    ) -> list[Face]:
        """Faces from the raw heads of an `input_size` input that held a region
        at `origin` of a width x height frame, scaled by `scale`."""
        input_size = input_size or self.input_size
        boxes, scores, points = [], [], []
        for stride in self.strides:
            cls = np.clip(outputs[f"cls_{stride}"][0, :, 0], 0, 1)
            obj = np.clip(outputs[f"obj_{stride}"][0, :, 0], 0, 1)
            score = np.sqrt(cls * obj)
            keep = np.nonzero(score >= self.score_threshold)[0]
            if keep.size == 0:
                continue
            cols = input_size // stride
            col, row = keep % cols, keep // cols
            bbox = outputs[f"bbox_{stride}"][0, keep]
            kps = outputs[f"kps_{stride}"][0, keep].reshape(-1, 5, 2)
            cx = (col + bbox[:, 0]) * stride
            cy = (row + bbox[:, 1]) * stride
            w = np.exp(bbox[:, 2]) * stride
            h = np.exp(bbox[:, 3]) * stride
            boxes.append(np.stack([cx - w / 2, cy - h / 2, w, h], axis=1))
            scores.append(score[keep])
            lx = (kps[:, :, 0] + col[:, None]) * stride
            ly = (kps[:, :, 1] + row[:, None]) * stride
            points.append(np.stack([lx, ly], axis=2))
        if not boxes:
            return []
        all_boxes = np.concatenate(boxes)
        all_scores = np.concatenate(scores)
        all_points = np.concatenate(points)
        kept = cv2.dnn.NMSBoxes(
            all_boxes.tolist(),
            all_scores.tolist(),
            self.score_threshold,
            self.nms_threshold,
            top_k=self.top_k,
        )
        faces = []
        offset = np.array(origin, dtype=np.float64)
        for index in np.asarray(kept).reshape(-1):
            x, y, w, h = (all_boxes[index] / scale).tolist()
            x, y = x + origin[0], y + origin[1]
            # Clip the box to the frame; landmarks stay as predicted.
            x0, y0 = max(0.0, x), max(0.0, y)
            x1, y1 = min(float(width), x + w), min(float(height), y + h)
            if x1 - x0 < 2 or y1 - y0 < 2:
                continue
            faces.append(
                Face(
                    box=(x0, y0, x1 - x0, y1 - y0),
                    landmarks=(all_points[index] / scale + offset).astype(np.float32),
                    score=float(all_scores[index]),
                    predicted_box=(x, y, w, h),
                )
            )
        faces.sort(key=lambda f: f.area, reverse=True)
        return faces
