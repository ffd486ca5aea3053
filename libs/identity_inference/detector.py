"""Face detection with five landmarks (YuNet), decoded as OpenCV's FaceDetectorYN does.

The graph's input is fixed at 640x640: the frame is scaled so that its long
side is 640 and placed top-left on a zero canvas (a letterbox), the raw
anchor-free heads are decoded per stride, scored sqrt(cls * obj), filtered by
the manifest's score threshold and non-maximum suppressed, then mapped back
to frame coordinates. Landmarks come out in ArcFace template order.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from identity_inference.manifest import ModelManifest
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


class FaceDetector:
    def __init__(self, runner: Runner):
        self.runner = runner
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

    def letterbox(self, image: np.ndarray) -> tuple[np.ndarray, float]:
        """The image scaled into the top-left of an input-size square, and the scale."""
        height, width = image.shape[:2]
        scale = self.input_size / max(height, width)
        new_w, new_h = max(1, round(width * scale)), max(1, round(height * scale))
        interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
        resized = cv2.resize(image, (new_w, new_h), interpolation=interpolation)
        canvas = np.zeros((self.input_size, self.input_size, 3), dtype=np.uint8)
        canvas[:new_h, :new_w] = resized
        return canvas, scale

    @staticmethod
    def to_blob(canvas: np.ndarray) -> np.ndarray:
        return canvas.transpose(2, 0, 1)[None].astype(np.float32)

    def detect(self, image: np.ndarray) -> list[Face]:
        """Faces in a BGR frame, largest first."""
        canvas, scale = self.letterbox(image)
        outputs = self.runner.infer(self.to_blob(canvas))
        return self.decode(outputs, scale, image.shape[1], image.shape[0])

    def decode(
        self, outputs: dict[str, np.ndarray], scale: float, width: int, height: int
    ) -> list[Face]:
        boxes, scores, points = [], [], []
        for stride in self.strides:
            cls = np.clip(outputs[f"cls_{stride}"][0, :, 0], 0, 1)
            obj = np.clip(outputs[f"obj_{stride}"][0, :, 0], 0, 1)
            score = np.sqrt(cls * obj)
            keep = np.nonzero(score >= self.score_threshold)[0]
            if keep.size == 0:
                continue
            cols = self.input_size // stride
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
        for index in np.asarray(kept).reshape(-1):
            x, y, w, h = (all_boxes[index] / scale).tolist()
            # Clip the box to the frame; landmarks stay as predicted.
            x0, y0 = max(0.0, x), max(0.0, y)
            x1, y1 = min(float(width), x + w), min(float(height), y + h)
            if x1 - x0 < 2 or y1 - y0 < 2:
                continue
            faces.append(
                Face(
                    box=(x0, y0, x1 - x0, y1 - y0),
                    landmarks=(all_points[index] / scale).astype(np.float32),
                    score=float(all_scores[index]),
                    predicted_box=(x, y, w, h),
                )
            )
        faces.sort(key=lambda f: f.area, reverse=True)
        return faces
