"""Find the KTP in a photo, rectify it, and measure glare and blur on it.

The KTP is an ID-1 card (85.6 x 54 mm, aspect 1.586). The card is looked
for as the largest convex quadrilateral whose rectified aspect is close to
ID-1; the photo is then warped to a canonical 1012 x 638 image (about
300 dpi), on which OCR, the portrait search, and the quality measures run.
A photo that is itself a tight crop of the card (a scan) is accepted as the
card when its own aspect is ID-1 and no smaller card is found inside it.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

CARD_WIDTH = 1012
CARD_HEIGHT = 638
ID1_ASPECT = 85.6 / 54.0
# Accepted deviation of the rectified aspect (perspective is not fully
# undone by a homography estimated from a slightly rounded outline).
ASPECT_TOLERANCE = 0.10
# The card must cover at least this fraction of the photo (smaller cards
# are still found, and fail the card_width_px measure).
MIN_CARD_AREA_RATIO = 0.03
# Above this the photo is a tight crop of the card (the "frame" case).
MAX_CARD_AREA_RATIO = 0.92
WORK_SIDE = 800


@dataclass(frozen=True)
class CardLocation:
    # Corners in the input image, clockwise from top-left.
    corners: tuple[tuple[float, float], ...]
    # "outline": a quadrilateral was found; "frame": the photo is the card.
    method: str
    # Card width in input pixels (mean of top and bottom edges).
    width_px: float


def _order_clockwise(points: np.ndarray) -> np.ndarray:
    """Top-left, top-right, bottom-right, bottom-left; long side horizontal."""
    centre = points.mean(axis=0)
    angles = np.arctan2(points[:, 1] - centre[1], points[:, 0] - centre[0])
    ordered = points[np.argsort(angles)]  # clockwise in image coordinates (y down)
    # Start from the corner nearest the image origin.
    start = int(np.argmin(ordered.sum(axis=1)))
    ordered = np.roll(ordered, -start, axis=0)
    top = np.linalg.norm(ordered[1] - ordered[0])
    left = np.linalg.norm(ordered[3] - ordered[0])
    if left > top:
        # Held in portrait orientation: rotate so the long side is horizontal.
        ordered = np.roll(ordered, -1, axis=0)
    return ordered


def _rectified_aspect(quad: np.ndarray) -> float:
    top = np.linalg.norm(quad[1] - quad[0])
    bottom = np.linalg.norm(quad[2] - quad[3])
    left = np.linalg.norm(quad[3] - quad[0])
    right = np.linalg.norm(quad[2] - quad[1])
    return float((top + bottom) / max(float(left + right), 1e-6))


def _edge_support(quad: np.ndarray, edges: np.ndarray) -> float:
    """Fraction of points along the quad's sides that lie on an image edge."""
    height, width = edges.shape
    points = []
    for begin, end in zip(quad, np.roll(quad, -1, axis=0), strict=True):
        steps = max(int(np.linalg.norm(end - begin) / 2), 1)
        t = np.linspace(0.0, 1.0, steps, endpoint=False)[:, None]
        points.append(begin + t * (end - begin))
    xy = np.rint(np.concatenate(points)).astype(int)
    inside = (xy[:, 0] >= 0) & (xy[:, 0] < width) & (xy[:, 1] >= 0) & (xy[:, 1] < height)
    xy = xy[inside]
    return float(np.mean(edges[xy[:, 1], xy[:, 0]] > 0)) if len(xy) else 0.0


def _unlike_background(colour: np.ndarray) -> np.ndarray:
    """Pixels whose colour differs from the photo's border (the table the
    card lies on): finds a light card on a light background, where the
    grey-level edges are too weak."""
    lab = cv2.cvtColor(cv2.GaussianBlur(colour, (7, 7), 0), cv2.COLOR_BGR2LAB).astype(np.float32)
    height, width = lab.shape[:2]
    strip = max(2, int(0.03 * min(height, width)))
    border = np.concatenate(
        [
            lab[:strip].reshape(-1, 3),
            lab[-strip:].reshape(-1, 3),
            lab[:, :strip].reshape(-1, 3),
            lab[:, -strip:].reshape(-1, 3),
        ]
    )
    reference = np.median(border, axis=0)
    distance = np.linalg.norm(lab - reference, axis=2)
    border_distance = np.linalg.norm(border - reference, axis=1)
    threshold = max(8.0, float(np.percentile(border_distance, 95)) + 4.0)
    mask = (distance > threshold).astype(np.uint8) * 255
    kernel = cv2.getStructuringElement(cv2.MORPH_RECT, (7, 7))
    return cv2.morphologyEx(cv2.morphologyEx(mask, cv2.MORPH_CLOSE, kernel), cv2.MORPH_OPEN, kernel)


def _candidate_quads(gray: np.ndarray, colour: np.ndarray | None = None) -> list[np.ndarray]:
    """Convex quadrilaterals that fill their contour and sit on real edges."""
    quads = []
    blurred = cv2.GaussianBlur(gray, (5, 5), 0)
    median = float(np.median(blurred))
    edge_sets = [
        cv2.Canny(blurred, int(max(0, 0.66 * median) * 0.5), int(min(255, 1.33 * median) * 0.5)),
        cv2.Canny(blurred, 30, 90),
    ]
    kernel = cv2.getStructuringElement(cv2.MORPH_RECT, (5, 5))
    support = cv2.dilate(edge_sets[1], kernel, iterations=1)
    # Large uniform regions (card versus background) by Otsu, both polarities.
    _, otsu = cv2.threshold(blurred, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    masks = [(cv2.dilate(e, kernel, iterations=1), support) for e in edge_sets] + [
        (otsu, support),
        (255 - otsu, support),
    ]
    if colour is not None:
        unlike = _unlike_background(colour)
        # Its outline is the colour boundary, which Canny may not see.
        boundary = cv2.dilate(cv2.morphologyEx(unlike, cv2.MORPH_GRADIENT, kernel), kernel)
        masks.append((unlike, cv2.bitwise_or(support, boundary)))
    density = {id(edges): float(np.mean(edges > 0)) for _, edges in masks}
    for mask, edges in masks:
        contours, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        for contour in sorted(contours, key=cv2.contourArea, reverse=True)[:5]:
            hull = cv2.convexHull(contour)
            perimeter = cv2.arcLength(hull, True)
            for epsilon in (0.02, 0.04, 0.06):
                approx = cv2.approxPolyDP(hull, epsilon * perimeter, True)
                if len(approx) != 4:
                    continue
                quad = approx.reshape(4, 2).astype(np.float32)
                # A card fills its outline, and its outline is an edge.
                solidity = cv2.contourArea(contour) / max(cv2.contourArea(quad), 1.0)
                # The outline must be far edgier than the photo at large
                # (in noise or busy texture every line is on an "edge").
                on_edge = _edge_support(quad, edges)
                if solidity >= 0.85 and on_edge >= 0.6 and on_edge >= 2.5 * density[id(edges)]:
                    quads.append(quad)
                break
    return quads


def find_card(image: np.ndarray) -> CardLocation | None:
    """The card's outline in `image`, or None when no card-shaped region is found."""
    height, width = image.shape[:2]
    scale = WORK_SIDE / max(height, width)
    small = (
        cv2.resize(
            image, (round(width * scale), round(height * scale)), interpolation=cv2.INTER_AREA
        )
        if scale < 1
        else image
    )
    scale = min(scale, 1.0)
    gray = cv2.cvtColor(small, cv2.COLOR_BGR2GRAY)
    area = gray.shape[0] * gray.shape[1]
    best: np.ndarray | None = None
    best_area = 0.0
    for quad in _candidate_quads(gray, small):
        quad_area = cv2.contourArea(quad)
        if quad_area < MIN_CARD_AREA_RATIO * area or quad_area > MAX_CARD_AREA_RATIO * area:
            continue
        ordered = _order_clockwise(quad)
        if abs(_rectified_aspect(ordered) - ID1_ASPECT) > ASPECT_TOLERANCE * ID1_ASPECT:
            continue
        if quad_area > best_area:
            best, best_area = ordered, quad_area
    if best is not None:
        corners = best / scale
        width_px = float(
            (np.linalg.norm(corners[1] - corners[0]) + np.linalg.norm(corners[2] - corners[3])) / 2
        )
        return CardLocation(tuple((float(x), float(y)) for x, y in corners), "outline", width_px)
    if abs(width / height - ID1_ASPECT) <= 0.08 * ID1_ASPECT:
        corners = ((0.0, 0.0), (width - 1.0, 0.0), (width - 1.0, height - 1.0), (0.0, height - 1.0))
        return CardLocation(corners, "frame", float(width))
    return None


def rectify(image: np.ndarray, corners: tuple[tuple[float, float], ...]) -> np.ndarray:
    """The card warped to CARD_WIDTH x CARD_HEIGHT."""
    source = np.array(corners, dtype=np.float32)
    target = np.array(
        [[0, 0], [CARD_WIDTH - 1, 0], [CARD_WIDTH - 1, CARD_HEIGHT - 1], [0, CARD_HEIGHT - 1]],
        dtype=np.float32,
    )
    matrix = cv2.getPerspectiveTransform(source, target)
    return cv2.warpPerspective(
        image,
        matrix,
        (CARD_WIDTH, CARD_HEIGHT),
        flags=cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_REPLICATE,
    )


def rotate_half_turn(
    card: np.ndarray, corners: tuple[tuple[float, float], ...]
) -> tuple[np.ndarray, tuple[tuple[float, float], ...]]:
    """The card upside down, with its corners re-ordered to match."""
    return cv2.rotate(card, cv2.ROTATE_180), corners[2:] + corners[:2]


def blur_laplacian_var(card: np.ndarray) -> float:
    """Variance of the Laplacian of the rectified card (higher is sharper)."""
    gray = cv2.cvtColor(card, cv2.COLOR_BGR2GRAY)
    return float(cv2.Laplacian(gray, cv2.CV_64F).var())


def glare_ratio(card: np.ndarray, min_blob_px: int = 40) -> float:
    """Fraction of the card covered by specular glare.

    Glare is near-white and unsaturated (HSV value >= 245, saturation <= 30)
    in blobs of at least `min_blob_px` pixels; isolated white pixels (print,
    noise) do not count.
    """
    hsv = cv2.cvtColor(card, cv2.COLOR_BGR2HSV)
    mask = ((hsv[:, :, 2] >= 245) & (hsv[:, :, 1] <= 30)).astype(np.uint8)
    count, _, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    covered = sum(
        int(stats[i, cv2.CC_STAT_AREA])
        for i in range(1, count)
        if stats[i, cv2.CC_STAT_AREA] >= min_blob_px
    )
    return covered / float(card.shape[0] * card.shape[1])
