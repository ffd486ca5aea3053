"""Step-up latency: through the REST gateway and the mesh vs the same pipeline in-process.

    .venv/bin/python tools/bench/step_up.py [--customers 20] [--per-customer 5]
        [--database postgres|sqlite]

"gateway": `identity up` runs the six services and the gateway as separate
processes on this machine (the one-machine run; with `--database postgres`
against a scratch PostgreSQL schema). Each timed request is one
`POST /api/identity/auth/step-up`: JSON + base64 through the gateway, API-key
check (cached), rate limit, kyc-tier, capture-quality (decode, detect, ISO
measures, crops), liveness (signature, nonce, challenge, PAD, flash),
embedding, matching (sealed reference, calibrated score), the verification,
sealed bundle and audit outbox in one transaction. The flash challenge is
fetched before the clock starts, as the SDK does while it captures.

"in-process": the same compute in this process on the same frames, with
capture-quality's own assessor: decode every frame, detect the baseline frame
whole and each flash frame near its face (detect once), ISO measures of the
baseline (what kyc-tier asks: measure_crop_frame_only), PAD on
the baseline frame's crops, flash verification, alignment + embedding, cosine
against the customer's reference.
No network, no database, no signature.

Both are measured side by side in one run, alternating request by request, so
the machine's noise hits both alike. Prints medians, p99 and the ratio; writes
JSON to bench-results/. Nothing asserts a time.
"""

from __future__ import annotations

import argparse
import base64
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from contextlib import ExitStack
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402

from identity_capture.sdk import SdkSigner  # noqa: E402
from identity_inference import images  # noqa: E402
from identity_inference.align import align_face  # noqa: E402
from identity_inference.detector import ROI_INPUT_SIZE, FaceDetector  # noqa: E402
from identity_inference.embedder import FaceEmbedder  # noqa: E402
from identity_inference.manifest import PACKAGED_PAD_DIR, load_catalogue, resolve_path  # noqa: E402
from identity_inference.pad import PadScorer, crop_spec  # noqa: E402
from identity_inference.runners import OnnxRunner  # noqa: E402
from identity_runtime import mesh  # noqa: E402
from services.capture_quality.faces import SELFIE, FaceAssessor  # noqa: E402
from services.liveness import flash  # noqa: E402
from tests.support import TESTDATA  # noqa: E402
from tools.bench.common import publish  # noqa: E402

FACES = TESTDATA / "faces"
PAD_DIR = PACKAGED_PAD_DIR
# The persona's photos (one identity): enrolled from one, stepped up with others.
# img5, img10 and img11 are too small or tilted for the selfie profile (they are
# denied, correctly, on quality), so they are not probes here.
ENROL, PROBES = "img2.jpg", ("img1.jpg", "img4.jpg", "img6.jpg", "img7.jpg")


def selfie_frame(path: Path, detector: cv2.FaceDetectorYN) -> np.ndarray:
    """The photo framed like a front-camera selfie (face fills the frame)."""
    image = cv2.imread(str(path))
    assert image is not None, path
    detector.setInputSize((image.shape[1], image.shape[0]))
    _, faces = detector.detect(image)
    return selfie_crop(image, faces[0][:4])


def selfie_crop(image: np.ndarray, box: Sequence[float]) -> np.ndarray:
    """`image` cut around the face `box` (x, y, w, h) as a selfie frames it, at most 640 px."""
    x, y, w, h = box
    cx, cy, side = x + w / 2, y + h / 2, max(w, h) * 1.8
    x0, y0 = int(max(0, cx - side / 2)), int(max(0, cy - side / 2))
    crop = image[
        y0 : int(min(image.shape[0], cy + side / 2)), x0 : int(min(image.shape[1], cx + side / 2))
    ]
    scale = 640 / max(crop.shape[:2])
    return (
        cv2.resize(crop, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        if scale < 1
        else crop
    )


def tint(image: np.ndarray, colour: str, strength: float = 0.15) -> np.ndarray:
    r, g, b = (int(colour.lstrip("#")[i : i + 2], 16) / 255 for i in (0, 2, 4))
    return np.clip(
        image.astype(np.float32) * ((1 - strength) + strength * np.array([b, g, r])), 0, 255
    ).astype(np.uint8)


def jpeg(image: np.ndarray) -> bytes:
    return cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 90])[1].tobytes()


def capture(image: np.ndarray, sequence: list[str]) -> tuple[bytes, list[bytes]]:
    return jpeg(image), [jpeg(tint(image, c)) for c in sequence]


def bundle_json(signer: SdkSigner, challenge: dict, baseline: bytes, flashes: list[bytes]) -> dict:
    signed = signer.sign_bundle(challenge_id=challenge["challengeId"], frames=[baseline, *flashes])
    duration = challenge.get("flashDurationMs", 400)
    b64 = lambda data: base64.b64encode(data).decode()  # noqa: E731
    return {
        "frames": [{"image": {"data": b64(baseline)}, "baseline": True}]
        + [{"image": {"data": b64(f)}, "offsetMs": i * duration} for i, f in enumerate(flashes)],
        "attestation": signed.attestation_json(),
    }


def enrol_images(yunet: cv2.FaceDetectorYN) -> list[np.ndarray]:
    """Candidate references, the persona's first: every test photo with a face."""
    names = [ENROL] + sorted(
        (p.name for p in FACES.glob("img*.jpg") if p.name != ENROL),
        key=lambda n: int(n[3:-4]),
    )
    found = []
    for name in names:
        try:
            found.append(selfie_frame(FACES / name, yunet))
        except (IndexError, TypeError, cv2.error):
            continue  # no face found
    return found


def enrol_distinct(
    client: httpx.Client, count: int, references: list[np.ndarray], prefix: str
) -> list[tuple[str, SdkSigner, np.ndarray]]:
    """`count` customers, each with a device and a reference enrolled by face
    liveness, each a different face: the same face twice would be held as a
    duplicate (never matched, so every step-up of it refused). A photo that is
    not live enough or is held (another photo of a person already enrolled) is
    skipped. Returns (customer id, device signer, reference photo)."""

    def post(path: str, body: dict) -> dict:
        reply = client.post(path, json=body)
        if reply.status_code != 200:
            raise SystemExit(f"{prefix} {path}: {reply.status_code} {reply.text[:300]}")
        return reply.json()

    enrolled: list[tuple[str, SdkSigner, np.ndarray]] = []
    for index, image in enumerate(references):
        if len(enrolled) == count:
            break
        external = f"{prefix}-{index}-{time.time_ns()}"
        customer = post("/api/customers", {"externalId": external})["customer"]["customerId"]
        signer = SdkSigner()
        post(
            "/api/identity/devices/register",
            {
                "customerId": customer,
                "deviceId": signer.device_id,
                "algorithm": "KEY_ALGORITHM_ECDSA_P256_SHA256",
                "publicKeyPem": signer.public_key_pem().decode(),
            },
        )
        challenge = post("/api/identity/face/flash-challenge", {"customerId": customer})[
            "challenge"
        ]
        baseline, flashes = capture(image, [c["hex"] for c in challenge["sequence"]])
        live = post(
            "/api/identity/face/liveness",
            {
                "customerId": customer,
                "challengeId": challenge["challengeId"],
                "bundle": bundle_json(signer, challenge, baseline, flashes),
            },
        )
        if not live["enrollmentId"]:
            continue
        listed = client.get("/api/identity/face/enrollments", params={"customerId": customer})
        listed.raise_for_status()
        if any(e.get("active") for e in listed.json().get("enrollments", [])):
            enrolled.append((customer, signer, image))
    if len(enrolled) < count:
        raise SystemExit(f"{prefix}: only {len(enrolled)} distinct references")
    return enrolled


class InProcess:
    """The step-up compute in one process, without network or database: the
    capture-quality service's own assessor (full detection on the baseline
    frame only, the flash frames near its face), PAD on its crops, flash
    verification, SFace on its aligned crop and on a flash frame's (the
    witness: the same person?), cosine against the reference."""

    def __init__(self, threads: int, detect_once: bool = True):
        catalogue = load_catalogue()

        def runner(model_id: str, **kw: object) -> OnnxRunner:
            loaded = OnnxRunner(catalogue[model_id], intra_op_threads=threads, **kw)  # type: ignore[arg-type]
            loaded.load()
            return loaded

        self.detector = FaceDetector(
            runner("yunet-2023mar"), runner("yunet-2023mar", input_size=ROI_INPUT_SIZE)
        )
        self.pad = PadScorer(
            [runner("minifasnet-v2", pad_dir=PAD_DIR), runner("minifasnet-v1se", pad_dir=PAD_DIR)]
        )
        self.embedder = FaceEmbedder(runner("sface-2021dec"))
        self.limits = images.ImageLimits()
        self.assessor = FaceAssessor(
            self.detector,
            [crop_spec(r.manifest) for r in self.pad.runners],
            self.limits,
            detect_once=detect_once,
        )

    def embed(self, frame: bytes) -> np.ndarray:
        image = images.decode(frame, self.limits)
        face = self.detector.detect(image)[0]
        return self.embedder.embed([align_face(image, face.landmarks)])[0]

    def step_up(
        self,
        baseline: bytes,
        flashes: list[bytes],
        sequence: list[str],
        reference: np.ndarray,
        duration: int,
    ) -> bool:
        assessed = self.assessor.assess(
            [baseline, *flashes],
            SELFIE,
            include_crops=True,
            crop_frame_index=0,
            measure_crop_frame_only=True,
        )
        if assessed.crops is None:
            return False
        colours = [
            flash.FrameColour((f.index - 1) * duration, f.colour.face_bgr, bool(f.faces))
            for f in assessed.frames[1:]
        ]
        pad = self.pad.score({c.scale: c.image for c in assessed.crops.pad})
        response = flash.verify(sequence, duration, colours, min_response=0.004, min_score=0.75)
        faces = [assessed.crops.aligned, *([assessed.witness.aligned] if assessed.witness else [])]
        probe, *witness = self.embedder.embed(faces)
        same_person = all(float(w @ probe) >= 0.48 for w in witness)
        return bool(
            pad.live and response.passed and same_person and float(probe @ reference) >= 0.45
        )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_mesh(
    stack: ExitStack,
    database: str,
    extra: dict[str, str] | None = None,
    identity: Path | None = None,
) -> tuple[str, str, int]:
    """`identity up` (this checkout's, or `identity`) in a data directory of its
    own (with `extra` variables); (gateway URL, the printed API key, its pid)."""
    data_dir = Path(stack.enter_context(tempfile.TemporaryDirectory()))
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(tuple(f"{s.env_prefix}_" for s in mesh.SERVICES) + ("GATEWAY_",))
    }
    env.update({f"{s.env_prefix}_PORT": str(free_port()) for s in mesh.SERVICES})
    gateway_port = free_port()
    env.update({"GATEWAY_PORT": str(gateway_port), "IDENTITY_DATA_DIR": str(data_dir)})
    for service in mesh.SERVICES:
        env[f"{service.env_prefix}_LOG_LEVEL"] = "WARNING"
    env["GATEWAY_LOG_LEVEL"] = "WARNING"
    env.update(extra or {})
    if database == "postgres":
        from tools.bench.common import scratch_schema

        env["IDENTITY_DATABASE_URL"] = stack.enter_context(scratch_schema(identity=identity))
    process = subprocess.Popen(
        [str(identity or Path(sys.executable).parent / "identity"), "up"],
        env=env,
        cwd=data_dir,
        stdout=subprocess.PIPE,
        text=True,
    )

    def stop() -> None:
        process.send_signal(signal.SIGINT)
        process.wait(60)

    stack.callback(stop)
    key = ""
    for line in process.stdout:  # type: ignore[union-attr]
        if "API key" in line and "idk_" in line:
            key = line.split()[2]
        if "press Ctrl-C" in line:
            break
    if process.poll() is not None or not key:
        raise SystemExit("identity up did not start; see its logs in the data directory")
    return f"http://127.0.0.1:{gateway_port}", key, process.pid


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(values, q))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=20)
    parser.add_argument(
        "--per-customer",
        type=int,
        default=5,
        help="step-ups per customer (the limit is 20 challenges/min)",
    )
    parser.add_argument("--database", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument(
        "--threads", type=int, default=1, help="ONNX Runtime threads of the in-process run"
    )
    parser.add_argument("--out", type=Path, default=ROOT / "bench-results")
    args = parser.parse_args()

    yunet = cv2.FaceDetectorYN.create(
        str(resolve_path(load_catalogue()["yunet-2023mar"])), "", (320, 320), 0.6
    )
    references = enrol_images(yunet)
    local = InProcess(args.threads)

    gateway_ms: list[float] = []
    local_ms: list[float] = []
    allowed = 0
    with ExitStack() as stack:
        base, key, _ = start_mesh(stack, args.database)
        client = stack.enter_context(
            httpx.Client(base_url=base, headers={"Authorization": f"Bearer {key}"}, timeout=30)
        )

        def post(path: str, body: dict) -> dict:
            reply = client.post(path, json=body)
            if reply.status_code != 200:
                raise SystemExit(f"{path}: {reply.status_code} {reply.text[:300]}")
            return reply.json()

        customers = enrol_distinct(client, args.customers, references, "bench")
        embedded = {customer: local.embed(jpeg(image)) for customer, _, image in customers}

        for _ in range(args.per_customer):
            for customer, signer, image in customers:
                challenge = post(
                    "/api/identity/face/flash-challenge",
                    {"customerId": customer, "purpose": "CHALLENGE_PURPOSE_STEP_UP"},
                )["challenge"]
                sequence = [c["hex"] for c in challenge["sequence"]]
                baseline, flashes = capture(image, sequence)
                body = {
                    "customerId": customer,
                    "challengeId": challenge["challengeId"],
                    "bundle": bundle_json(signer, challenge, baseline, flashes),
                }
                started = time.perf_counter()
                decision = post("/api/identity/auth/step-up", body)
                gateway_ms.append((time.perf_counter() - started) * 1000)
                allowed += bool(decision["allow"])
                started = time.perf_counter()
                local.step_up(
                    baseline,
                    flashes,
                    sequence,
                    embedded[customer],
                    challenge.get("flashDurationMs", 400),
                )
                local_ms.append((time.perf_counter() - started) * 1000)

    frames = 1 + len(sequence)
    results = {
        "requests": len(gateway_ms),
        "frames_per_capture": frames,
        "database": args.database,
        "cpus": os.cpu_count(),
        "load_average": os.getloadavg(),
        "allowed": allowed,
        "gateway": {
            "p50_ms": percentile(gateway_ms, 50),
            "p99_ms": percentile(gateway_ms, 99),
            "max_ms": max(gateway_ms),
        },
        "in_process": {
            "p50_ms": percentile(local_ms, 50),
            "p99_ms": percentile(local_ms, 99),
            "max_ms": max(local_ms),
        },
    }
    results["ratio_p50"] = results["gateway"]["p50_ms"] / results["in_process"]["p50_ms"]
    results["ratio_p99"] = results["gateway"]["p99_ms"] / results["in_process"]["p99_ms"]
    paths = [(name, results[name]) for name in ("gateway", "in_process")]
    publish(
        args.out / "step_up.json",
        results,
        [
            f"{results['requests']} step-ups ({frames} frames each, {args.database}), "
            f"{allowed} allowed, load {results['load_average']}",
            "| path | p50 ms | p99 ms | max ms |\n|---|---:|---:|---:|",
            *(
                f"| {name} | {row['p50_ms']:.0f} | {row['p99_ms']:.0f} | {row['max_ms']:.0f} |"
                for name, row in paths
            ),
            f"mesh overhead: x{results['ratio_p50']:.2f} at p50, "
            f"x{results['ratio_p99']:.2f} at p99",
        ],
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
