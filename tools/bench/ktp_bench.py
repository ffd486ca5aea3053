"""KTP check latency per stage, in-process and through the capture-quality service.

    .venv/bin/python tools/bench/ktp_bench.py [--iterations 20] [--threads 2]

Runs the dev KTP photos (tests/data/ktp) through the same code the
service runs: safe decode, card find + rectify, portrait detection, quality
measures (blur, glare, re-capture cues), OCR, parsing + NIK validation +
layout, cross-checks. Then runs CheckKtp on a real server (port 0, same
process) with the same photo, so the service overhead (gRPC, protobuf
mapping, thread hop) is the difference between the two totals, measured
side by side in one run. Prints p50/p99 in milliseconds; with few
iterations p99 is close to the maximum.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from identity_inference.images import ImageLimits, decode  # noqa: E402
from identity_ktp.analysis import KtpAnalyzer  # noqa: E402
from identity_ktp.ocr import OcrEngine  # noqa: E402
from identity_ktp.portrait import PortraitFinder, load_face_detector  # noqa: E402
from identity_ktp.regions import default_index  # noqa: E402
from identity_platform_api.capture_quality.v1 import capture_quality_pb2 as pb  # noqa: E402
from identity_platform_api.capture_quality.v1 import capture_quality_pb2_grpc  # noqa: E402
from identity_platform_api.common.v1 import types_pb2  # noqa: E402
from services.capture_quality.service import SPEC  # noqa: E402
from tests.support import TESTDATA, channel, start_service  # noqa: E402

STAGES = ("decode", "card", "portrait", "quality", "ocr", "parse", "checks", "total")
IMAGES = ("ktp_flat.png", "ktp_captured.jpg")
MAX_PIXELS = 40_000_000


def percentiles(values: list[float]) -> str:
    ms = np.array(values) * 1000
    return f"{np.percentile(ms, 50):8.1f} {np.percentile(ms, 99):8.1f}"


def in_process(analyzer: KtpAnalyzer, data: bytes, iterations: int) -> dict[str, list[float]]:
    samples: dict[str, list[float]] = {stage: [] for stage in STAGES}
    for _ in range(iterations):
        start = time.perf_counter()
        image = decode(data, ImageLimits(max_pixels=MAX_PIXELS, min_side=1), "card_image")
        decoded = time.perf_counter()
        report = analyzer.analyze(image)
        samples["decode"].append(decoded - start)
        for stage, seconds in report.timings.items():
            samples[stage].append(seconds)
        samples["total"].append(time.perf_counter() - start)
    return samples


async def side_by_side(
    analyzer: KtpAnalyzer, photos: dict[str, tuple[bytes, int]], threads: int
) -> dict[str, tuple[list[float], list[float]]]:
    """Per photo: (in-process totals, CheckKtp round trips), alternating call by call."""
    server = await start_service(
        SPEC,
        {"CAPTURE_QUALITY_KTP_OCR_THREADS": str(threads), "CAPTURE_QUALITY_LOG_LEVEL": "WARNING"},
    )
    results = {}
    try:
        async with channel(server) as ch:
            stub = capture_quality_pb2_grpc.CaptureQualityServiceStub(ch)
            for name, (data, iterations) in photos.items():
                request = pb.CheckKtpRequest(card_image=types_pb2.Image(data=data))
                await stub.CheckKtp(request, timeout=60)  # warm-up
                direct, served = [], []
                for _ in range(iterations):
                    direct += in_process(analyzer, data, 1)["total"]
                    start = time.perf_counter()
                    await stub.CheckKtp(request, timeout=60)
                    served.append(time.perf_counter() - start)
                results[name] = (direct, served)
        return results
    finally:
        await server.stop(0)


def cardless_photo() -> bytes:
    """A 1280 x 900 JPEG with no card: the analysis stops after the card
    search, so the service's fixed overhead is not hidden by OCR variance."""
    import cv2

    noise = np.random.default_rng(0).integers(0, 255, (900, 1280, 3), dtype=np.uint8)
    return cv2.imencode(".jpg", cv2.GaussianBlur(noise, (0, 0), 4), [cv2.IMWRITE_JPEG_QUALITY, 80])[
        1
    ].tobytes()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=20)
    parser.add_argument(
        "--threads", type=int, default=2, help="ONNX Runtime intra-op threads for OCR"
    )
    args = parser.parse_args()

    analyzer = KtpAnalyzer(
        OcrEngine(threads=args.threads), PortraitFinder(load_face_detector()), default_index()
    )
    photos = {name: (TESTDATA / "ktp" / name).read_bytes() for name in IMAGES}
    print(
        f"KTP check, {args.iterations} iterations per photo, "
        f"OCR threads={args.threads}; milliseconds\n"
    )
    print(f"{'stage':10} " + " ".join(f"{name + ' p50':>17} {'p99':>8}" for name in IMAGES))
    results = {}
    for name, data in photos.items():
        in_process(analyzer, data, 2)  # warm-up
        results[name] = in_process(analyzer, data, args.iterations)
    for stage in STAGES:
        print(
            f"{stage:10} " + " ".join(f"{percentiles(results[name][stage]):>26}" for name in IMAGES)
        )

    compared = asyncio.run(
        side_by_side(
            analyzer,
            {
                "ktp_captured.jpg": (photos["ktp_captured.jpg"], args.iterations),
                "card-less photo": (cardless_photo(), 5 * args.iterations),
            },
            args.threads,
        )
    )
    print(
        "\nin-process (decode + analyze) and through CheckKtp (gRPC, port 0), "
        "alternating call by call:"
    )
    for name, (direct, served) in compared.items():
        ratio = statistics.median(served) / statistics.median(direct)
        extra = (statistics.median(served) - statistics.median(direct)) * 1000
        print(
            f"  {name:17} in-process p50/p99 {percentiles(direct)}"
            f"  CheckKtp p50/p99 {percentiles(served)}"
            f"  ratio {ratio:.3f} ({extra:+.1f} ms)"
        )


if __name__ == "__main__":
    main()
