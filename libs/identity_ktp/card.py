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
# A side of the outline within this many working pixels of the photo's
# border is taken to be the border, not the card's edge.
BORDER_MARGIN = 4.0


@dataclass(frozen=True)
class CardLocation:
    # Corners in the input image, clockwise from top-left.
    corners: tuple[tuple[float, float], ...]
    # "outline": a quadrilateral was found; "frame": the photo is the card.
    method: str
    # Card width in input pixels (mean of top and bottom edges).
    width_px: float
    # A side of the outline lies on the photo's border: part of the card
    # may be outside the frame (the outline would be a cut, not the card's).
    touches_border: bool = False


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


def _aspect_for_focal(n2: np.ndarray, n3: np.ndarray, focal: float, centre: np.ndarray) -> float:
    inverse = np.linalg.inv(np.array([[focal, 0, centre[0]], [0, focal, centre[1]], [0, 0, 1.0]]))
    a2, a3 = inverse @ n2, inverse @ n3
    return float(np.sqrt(np.dot(a2, a2) / max(float(np.dot(a3, a3)), 1e-12)))


def perspective_aspects(quad: np.ndarray, size: tuple[int, int]) -> list[float]:
    """Width/height of the rectangles whose perspective image is `quad`
    (clockwise from top-left), for a pinhole camera with its principal point
    at the photo's centre (Zhang & He, "Whiteboard scanning and image
    enhancement", 2007). The focal length is recovered from the quad when
    both pairs of sides converge; when a pair is parallel in the photo (a
    card tilted about one of its axes) it cannot be, and phone-like focal
    lengths (0.7, 1.0, 1.4 x the photo's longer side) are tried instead."""
    width, height = size
    centre = np.array([width / 2.0, height / 2.0])
    m1, m2, m4, m3 = (np.array([x, y, 1.0]) for x, y in quad)  # tl, tr, br, bl
    d2 = float(np.dot(np.cross(m2, m4), m3))
    d3 = float(np.dot(np.cross(m3, m4), m2))
    if abs(d2) < 1e-9 or abs(d3) < 1e-9:
        return []
    n2 = float(np.dot(np.cross(m1, m4), m3)) / d2 * m2 - m1
    n3 = float(np.dot(np.cross(m1, m4), m2)) / d3 * m3 - m1
    longer = float(max(width, height))
    focals = [0.7 * longer, 1.0 * longer, 1.4 * longer]
    if abs(n2[2] * n3[2]) > 1e-9:
        u0, v0 = centre
        f2 = -(
            (n2[0] * n3[0] - (n2[0] * n3[2] + n2[2] * n3[0]) * u0 + n2[2] * n3[2] * u0 * u0)
            + (n2[1] * n3[1] - (n2[1] * n3[2] + n2[2] * n3[1]) * v0 + n2[2] * n3[2] * v0 * v0)
        ) / (n2[2] * n3[2])
        if np.isfinite(f2) and (0.3 * longer) ** 2 <= f2 <= (3.0 * longer) ** 2:
            focals = [float(np.sqrt(f2))]
    return [_aspect_for_focal(n2, n3, focal, centre) for focal in focals]


def _is_id1(quad: np.ndarray, size: tuple[int, int]) -> bool:
    """ID-1 by the sides seen in the photo, or by the aspect the perspective
    implies (a card tilted 30 degrees towards the camera looks ~15 % wider)."""
    tolerance = ASPECT_TOLERANCE * ID1_ASPECT
    if abs(_rectified_aspect(quad) - ID1_ASPECT) <= tolerance:
        return True
    return any(abs(a - ID1_ASPECT) <= tolerance for a in perspective_aspects(quad, size))


def _touches_border(quad: np.ndarray, size: tuple[int, int], margin: float) -> bool:
    """A side of the quad runs along the photo's border (both its ends within
    `margin` pixels of the same border)."""
    width, height = size
    for begin, end in zip(quad, np.roll(quad, -1, axis=0), strict=True):
        for axis, limit in ((0, 0.0), (0, width - 1.0), (1, 0.0), (1, height - 1.0)):
            if abs(begin[axis] - limit) <= margin and abs(end[axis] - limit) <= margin:
                return True
    return False


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


def _margin_density(quad: np.ndarray, edges: np.ndarray) -> float:
    """Edge density of the band 3-8 % of the way in from the quad's outline:
    a card's margin is plain; a quad traced in texture or noise is not."""
    centre = quad.mean(axis=0)
    outer = (centre + (quad - centre) * 0.97).astype(np.int32)
    inner = (centre + (quad - centre) * 0.92).astype(np.int32)
    band = np.zeros(edges.shape, np.uint8)
    cv2.fillConvexPoly(band, outer, 1)
    cv2.fillConvexPoly(band, inner, 0)
    inside = band > 0
    return float(np.mean(edges[inside] > 0)) if inside.any() else 1.0


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
    # Faint steps too (a light card against white paper differs by ~15 grey
    # levels): its own edges are the outline's support.
    # An inner contour runs a few pixels inside its edge ring: wider support.
    faint = cv2.dilate(cv2.Canny(blurred, 10, 30), kernel, iterations=1)
    masks = [(cv2.dilate(e, kernel, iterations=1), support) for e in edge_sets] + [
        (faint, cv2.dilate(faint, kernel, iterations=2)),
        (otsu, support),
        (255 - otsu, support),
    ]
    if colour is not None:
        unlike = _unlike_background(colour)
        # Its outline is the colour boundary, which Canny may not see.
        boundary = cv2.dilate(cv2.morphologyEx(unlike, cv2.MORPH_GRADIENT, kernel), kernel)
        masks.append((unlike, cv2.bitwise_or(support, boundary)))
    density = {id(edges): float(np.mean(edges > 0)) for _, edges in masks}
    for index, (mask, edges) in enumerate(masks):
        # Edge maps: every closed outline, inner ones too. A card lying on
        # or against white paper shares edges with the paper's outline, so
        # the two merge into one outer contour; the card's outline is then
        # the inner contour of its edge ring.
        inner = index <= len(edge_sets)
        mode = cv2.RETR_LIST if inner else cv2.RETR_EXTERNAL
        contours, _ = cv2.findContours(mask, mode, cv2.CHAIN_APPROX_SIMPLE)
        for contour in sorted(contours, key=cv2.contourArea, reverse=True)[: 8 if inner else 5]:
            hull = cv2.convexHull(contour)
            perimeter = cv2.arcLength(hull, True)
            for epsilon in (0.02, 0.04, 0.06):
                approx = cv2.approxPolyDP(hull, epsilon * perimeter, True)
                if len(approx) != 4:
                    continue
                quad = approx.reshape(4, 2).astype(np.float32)
                # A card fills its outline, and its outline is an edge.
                solidity = cv2.contourArea(contour) / max(cv2.contourArea(quad), 1.0)
                # The outline must be far edgier than its surroundings (in
                # noise or busy texture every line is on an "edge"): than
                # the photo at large, or, on a busy background such as wood
                # grain, than the card's own plain margin just inside it.
                on_edge = _edge_support(quad, edges)
                if solidity >= 0.85 and on_edge >= 0.6:
                    if on_edge >= 2.5 * min(density[id(edges)], _margin_density(quad, edges)):
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
        if not _is_id1(ordered, (gray.shape[1], gray.shape[0])):
            continue
        if quad_area > best_area:
            best, best_area = ordered, quad_area
    if best is not None:
        corners = best / scale
        width_px = float(
            (np.linalg.norm(corners[1] - corners[0]) + np.linalg.norm(corners[2] - corners[3])) / 2
        )
        touches = _touches_border(best, (gray.shape[1], gray.shape[0]), BORDER_MARGIN)
        return CardLocation(
            tuple((float(x), float(y)) for x, y in corners), "outline", width_px, touches
        )
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
    return _blob_coverage(mask, min_blob_px)


def _blob_coverage(mask: np.ndarray, min_blob_px: int) -> float:
    """Fraction of `mask` (uint8, 1 = candidate pixel) covered by 8-connected
    blobs of at least `min_blob_px` pixels: isolated pixels do not count."""
    count, _, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    covered = sum(
        int(stats[i, cv2.CC_STAT_AREA])
        for i in range(1, count)
        if stats[i, cv2.CC_STAT_AREA] >= min_blob_px
    )
    return covered / float(mask.shape[0] * mask.shape[1])


# The text area of a rectified card (x0, y0, x1, y1 as fractions): where OCR
# needs sharpness. The portrait and the blank margins are left out.
TEXT_AREA = (0.02, 0.15, 0.70, 0.90)


def text_sharpness(card: np.ndarray) -> float:
    """Edge sharpness of the card's text in its least sharp direction.

    The strongest directional derivative (99th percentile) across the text
    area, in each of four directions, over the area's contrast (p95 - p5),
    after a light denoise; the minimum over directions. Motion blur smears
    edges along one direction only, which the Laplacian variance (mostly
    the other direction's energy) does not see; sensor noise adds
    high-frequency energy the denoise removes. About the inverse of the
    blurred edge width, in 1/px; independent of exposure."""
    height, width = card.shape[:2]
    x0, y0, x1, y1 = TEXT_AREA
    gray = cv2.cvtColor(card, cv2.COLOR_BGR2GRAY).astype(np.float32)
    area = gray[int(y0 * height) : int(y1 * height), int(x0 * width) : int(x1 * width)]
    smooth = cv2.GaussianBlur(area, (0, 0), 1.0)
    gx = cv2.Sobel(smooth, cv2.CV_32F, 1, 0, ksize=3) / 8.0
    gy = cv2.Sobel(smooth, cv2.CV_32F, 0, 1, ksize=3) / 8.0
    low, high = np.percentile(area, [5, 95])
    contrast = max(float(high - low), 1.0)
    strongest = []
    for angle in (0.0, 45.0, 90.0, 135.0):
        theta = np.deg2rad(angle)
        directional = np.abs(gx * np.cos(theta) + gy * np.sin(theta))
        strongest.append(float(np.percentile(directional, 99)))
    return min(strongest) / contrast


def relative_glare(region: np.ndarray, min_blob_px: int = 40) -> float:
    """Fraction of `region` covered by specular glare relative to the card's
    own background: unsaturated pixels clipped at >= 245 in every channel
    and at least 20 levels above the background (the lighter half's median
    of the darkest channel), in blobs of `min_blob_px` or more. A light card
    is not glare; a card whose background is itself clipped is over-exposed,
    which this does not measure."""
    low = region.min(axis=2)
    light = low[low >= np.percentile(low, 50)]
    background = float(np.median(light)) if light.size else 0.0
    if background + 20 > 255:
        return 0.0
    level = max(245.0, background + 20)
    mask = (low >= level).astype(np.uint8)
    return _blob_coverage(mask, min_blob_px)
