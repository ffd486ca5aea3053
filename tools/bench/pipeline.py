"""Per-stage latency of the face pipeline: in-process vs through the gRPC services vs via Triton.

    .venv/bin/python tools/bench/pipeline.py [--rounds 3] [--images 20] [--no-triton]
        [--out bench-results]

Stages, on the test photos (tests/data/faces, decoded from their JPEG bytes):

  decode        images.decode (header checks + OpenCV)
  detect        YuNet letterbox + inference + decode/NMS
  quality       ISO 19794-5 measures + colour sample
  pad           two MiniFASNet crops + inference + fusion
  align+embed   5-point alignment + SFace embedding

Three set-ups, measured side by side in one run on the same images:

  in-process    everything in this process on ONNX Runtime
  services      the same work through the real gRPC services started in this
                process on localhost (capture-quality AssessFace with crops,
                embedding Embed with the aligned crop, liveness PAD via the
                same runners: CheckLiveness needs a challenge per call and
                adds database work, so it is measured as its own row)
  triton        detector, PAD and embedding models on a local CPU Triton
                server (Python backend running ONNX Runtime), the rest local

Not a test: nothing asserts a time. Prints a Markdown table and writes JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from identity_capture.sdk import SdkSigner  # noqa: E402
from identity_inference import images, quality  # noqa: E402
from identity_inference.align import align_face  # noqa: E402
from identity_inference.detector import FaceDetector  # noqa: E402
from identity_inference.embedder import FaceEmbedder  # noqa: E402
from identity_inference.manifest import PACKAGED_PAD_DIR, load_catalogue  # noqa: E402
from identity_inference.pad import PadScorer, pad_crop  # noqa: E402
from identity_inference.runners import OnnxRunner  # noqa: E402
from identity_inference.triton import TritonRunner  # noqa: E402
from identity_inference.triton_repo import LocalTritonServer, materialise, triton_available  # noqa: E402
from identity_platform_api.capture_quality.v1 import capture_quality_pb2, capture_quality_pb2_grpc  # noqa: E402
from identity_platform_api.common.v1 import types_pb2  # noqa: E402
from identity_platform_api.embedding.v1 import embedding_pb2, embedding_pb2_grpc  # noqa: E402
from identity_platform_api.liveness.v1 import liveness_pb2, liveness_pb2_grpc  # noqa: E402
from tests.support import TESTDATA  # noqa: E402
from tools.bench.common import publish  # noqa: E402

FACES = TESTDATA / "faces"
PAD_DIR = PACKAGED_PAD_DIR
STAGES = ("decode", "detect", "quality", "pad", "align+embed")


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


class Timer:
    def __init__(self) -> None:
        self.samples: dict[str, list[float]] = {}

    def add(self, stage: str, seconds: float) -> None:
        self.samples.setdefault(stage, []).append(seconds * 1000)

    def summary(self) -> dict[str, dict[str, float]]:
        return {
            stage: {"p50_ms": percentile(v, 50), "p99_ms": percentile(v, 99), "n": len(v)}
            for stage, v in self.samples.items()
        }


def run_local(
    photos: list[bytes], detector: FaceDetector, pad: PadScorer, embedder: FaceEmbedder, rounds: int
) -> Timer:
    timer = Timer()
    limits = images.ImageLimits()
    for _ in range(rounds):
        for data in photos:
            t0 = time.perf_counter()
            image = images.decode(data, limits)
            t1 = time.perf_counter()
            faces = detector.detect(image)
            t2 = time.perf_counter()
            quality.assess(image, faces, quality.SELFIE)
            quality.colour_sample(image, faces[0] if faces else None)
            t3 = time.perf_counter()
            face = faces[0]
            pad.score({s.scale: pad_crop(image, face.box, s.scale, s.size) for s in pad.specs})
            t4 = time.perf_counter()
            embedder.embed([align_face(image, face.landmarks)])
            t5 = time.perf_counter()
            for stage, a, b in zip(STAGES, (t0, t1, t2, t3, t4), (t1, t2, t3, t4, t5), strict=True):
                timer.add(stage, b - a)
            timer.add("total", t5 - t0)
    return timer


async def run_services(photos: list[bytes], rounds: int, database: str) -> Timer:
    from services.capture_quality.service import SPEC as CAPTURE_QUALITY
    from services.embedding.service import SPEC as EMBEDDING
    from services.liveness.service import SPEC as LIVENESS
    from tests.support import channel, start_service

    cq = await start_service(CAPTURE_QUALITY)
    em = await start_service(EMBEDDING)
    lv = await start_service(LIVENESS, {"LIVENESS_DATABASE_URL": database})
    timer = Timer()
    # Each call gets a fresh caller token for org_bench from tests.support.channel.
    metadata: list[tuple[str, str]] = []
    try:
        async with (
            channel(cq, "org_bench") as c1,
            channel(em, "org_bench") as c2,
            channel(lv, "org_bench") as c3,
        ):
            assess = capture_quality_pb2_grpc.CaptureQualityServiceStub(c1)
            embed = embedding_pb2_grpc.EmbeddingServiceStub(c2)
            live = liveness_pb2_grpc.LivenessServiceStub(c3)
            signer = SdkSigner()
            await live.RegisterDevice(
                liveness_pb2.RegisterDeviceRequest(
                    device_id=signer.device_id,
                    customer_id="cus_bench",
                    algorithm=types_pb2.KEY_ALGORITHM_ECDSA_P256_SHA256,
                    public_key=signer.public_key_der(),
                ),
                metadata=metadata,
            )
            for _ in range(rounds):
                for data in photos:
                    t0 = time.perf_counter()
                    reply = await assess.AssessFace(
                        capture_quality_pb2.AssessFaceRequest(
                            frames=[types_pb2.Image(data=data)], include_crops=True
                        )
                    )
                    t1 = time.perf_counter()
                    await embed.Embed(
                        embedding_pb2.EmbedRequest(
                            face=embedding_pb2.FaceInput(aligned=reply.crops.aligned)
                        )
                    )
                    t2 = time.perf_counter()
                    challenge = (
                        await live.IssueChallenge(
                            liveness_pb2.IssueChallengeRequest(
                                customer_id="cus_bench", purpose=types_pb2.CHALLENGE_PURPOSE_STEP_UP
                            ),
                            metadata=metadata,
                        )
                    ).challenge
                    signed = signer.sign_bundle(challenge_id=challenge.challenge_id, frames=[data])
                    attestation = types_pb2.BundleAttestation(
                        device_id=signed.device_id,
                        nonce=signed.nonce,
                        bundle_sha256=signed.bundle_sha256,
                        signature=signed.signature,
                    )
                    attestation.captured_at.FromDatetime(signed.captured_at)
                    frames = [
                        liveness_pb2.FrameEvidence(
                            frame_index=i,
                            offset_ms=i * challenge.flash_duration_ms,
                            colour=reply.frames[0].colour,
                            face_found=True,
                        )
                        for i in range(len(challenge.sequence))
                    ]
                    t3 = time.perf_counter()
                    await live.CheckLiveness(
                        liveness_pb2.CheckLivenessRequest(
                            customer_id="cus_bench",
                            purpose=types_pb2.CHALLENGE_PURPOSE_STEP_UP,
                            challenge_id=challenge.challenge_id,
                            attestation=attestation,
                            computed_bundle_sha256=signed.bundle_sha256,
                            pad_crops=list(reply.crops.pad_crops),
                            frames=frames,
                        ),
                        metadata=metadata,
                    )
                    t4 = time.perf_counter()
                    timer.add("AssessFace (decode+detect+quality+crops)", t1 - t0)
                    timer.add("Embed (aligned crop)", t2 - t1)
                    timer.add("CheckLiveness (signature+DB+PAD+flash)", t4 - t3)
                    timer.add("total", (t2 - t0) + (t4 - t3))
    finally:
        for server in (cq, em, lv):
            await server.stop(0)
    return timer


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--images", type=int, default=20)
    parser.add_argument("--threads", type=int, default=1, help="ONNX Runtime intra-op threads")
    parser.add_argument("--no-triton", action="store_true")
    parser.add_argument("--out", type=Path, default=REPO / "bench-results")
    args = parser.parse_args()

    names = sorted(p for p in FACES.glob("img*.jpg"))[: args.images]
    photos = [p.read_bytes() for p in names]
    catalogue = load_catalogue()

    def local(model_id: str, **kw: Any) -> OnnxRunner:
        runner = OnnxRunner(catalogue[model_id], intra_op_threads=args.threads, **kw)
        runner.load()
        return runner

    detector = FaceDetector(local("yunet-2023mar"))
    pad = PadScorer(
        [local("minifasnet-v2", pad_dir=PAD_DIR), local("minifasnet-v1se", pad_dir=PAD_DIR)]
    )
    embedder = FaceEmbedder(local("sface-2021dec"))
    run_local(photos[:3], detector, pad, embedder, 1)  # warm-up

    results: dict[str, Any] = {
        "images": len(photos),
        "rounds": args.rounds,
        "threads": args.threads,
        "cpus": os.cpu_count(),
    }
    results["in-process"] = run_local(photos, detector, pad, embedder, args.rounds).summary()

    with tempfile.TemporaryDirectory() as tmp:
        database = f"sqlite:///{tmp}/bench.db"
        from identity_cli.schema import migrate_all

        migrate_all(database)
        os.environ.setdefault("CAPTURE_QUALITY_INTRA_OP_THREADS", str(args.threads))
        results["services"] = asyncio.run(run_services(photos, args.rounds, database)).summary()

        if not args.no_triton and triton_available() is None:
            repository = Path(tmp) / "triton"
            materialise(
                repository, pad_dir=PAD_DIR, backend="python", intra_op_threads=args.threads
            )
            server = LocalTritonServer(repository).start()
            try:

                def remote(model_id: str) -> TritonRunner:
                    runner = TritonRunner(catalogue[model_id], server.url)
                    runner.load()
                    return runner

                t_detector = FaceDetector(remote("yunet-2023mar"))
                t_pad = PadScorer([remote("minifasnet-v2"), remote("minifasnet-v1se")])
                t_embedder = FaceEmbedder(remote("sface-2021dec"))
                run_local(photos[:3], t_detector, t_pad, t_embedder, 1)
                results["triton"] = run_local(
                    photos, t_detector, t_pad, t_embedder, args.rounds
                ).summary()
            finally:
                server.stop()

    publish(
        args.out / "pipeline.json",
        results,
        [
            f"{len(photos)} photos x {args.rounds} rounds, {args.threads} ORT thread(s), "
            f"{os.cpu_count()} CPUs",
            "",
            "| set-up | stage | p50 ms | p99 ms |\n|---|---|---:|---:|",
            *(
                f"| {setup} | {stage} | {row['p50_ms']:.1f} | {row['p99_ms']:.1f} |"
                for setup in ("in-process", "services", "triton")
                for stage, row in results.get(setup, {}).items()
            ),
        ],
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
