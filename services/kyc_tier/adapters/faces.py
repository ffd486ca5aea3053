"""capture-quality (faces and KTP cards) and embedding."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from identity_platform_api.capture_quality.v1 import capture_quality_pb2, capture_quality_pb2_grpc
from identity_platform_api.common.v1 import types_pb2
from identity_platform_api.embedding.v1 import embedding_pb2, embedding_pb2_grpc
from identity_platform_api.liveness.v1 import liveness_pb2
from identity_runtime.clients import ClientFactory
from identity_runtime.errors import DomainError
from services.kyc_tier import ports
from services.kyc_tier.adapters.calls import call, opaque
from services.kyc_tier.mapping.enums import reasons_from_proto

_PASS = capture_quality_pb2.QUALITY_VERDICT_PASS


class GrpcCaptureQuality:
    def __init__(self, clients: ClientFactory):
        self.stub = clients.stub(
            "capture_quality", capture_quality_pb2_grpc.CaptureQualityServiceStub
        )

    async def assess_face(self, captured: ports.CapturedFrames, kind: str) -> ports.FaceAssessment:
        frames, offsets_ms, baseline = captured.images, captured.offsets_ms, captured.baseline
        # The unflashed baseline frame, when there is one, is judged and
        # cropped: a coloured flash distorts PAD and embeddings.
        baseline_index = next((i for i, flag in enumerate(baseline) if flag), None)
        request = capture_quality_pb2.AssessFaceRequest(
            frames=[types_pb2.Image(data=frame) for frame in frames],
            kind=capture_quality_pb2.CAPTURE_KIND_SELFIE
            if kind == "selfie"
            else capture_quality_pb2.CAPTURE_KIND_REFERENCE,
            include_crops=True,
        )
        if baseline_index is not None:
            request.crop_frame_index = baseline_index
            # Only the baseline is judged: the flash frames' faces and colour
            # are all the flash check reads of them.
            request.measure_crop_frame_only = True
        reply = await call("capture-quality", self.stub.AssessFace(request))
        # Per-frame evidence, as liveness takes it (opaque to the flows).
        evidence = tuple(
            liveness_pb2.FrameEvidence(
                frame_index=frame.frame_index,
                offset_ms=offsets_ms[frame.frame_index]
                if frame.frame_index < len(offsets_ms)
                else 0,
                colour=frame.colour,
                face_found=len(frame.faces) > 0,
                baseline=frame.frame_index < len(baseline) and baseline[frame.frame_index],
            )
            for frame in reply.frames
        )
        return ports.FaceAssessment(
            passed=reply.verdict == _PASS,
            reasons=reasons_from_proto(reply.reasons),
            face_found=reply.best_frame_index >= 0,
            best_frame_index=reply.best_frame_index,
            detector_model=reply.detector_model,
            crops=reply.crops if reply.HasField("crops") else None,
            frame_evidence=evidence,
            # As crops with the aligned face only: what the embedder takes.
            witness=types_pb2.FaceCrops(aligned=reply.witness)
            if reply.HasField("witness")
            else None,
            quality={
                m.name: m.value
                for f in reply.frames
                if f.frame_index == reply.best_frame_index
                for m in f.measures
            },
        )

    async def check_ktp(
        self,
        captured: ports.CapturedFrames,
        submitted_nik: str,
        submitted_fields: Mapping[str, str],
    ) -> ports.KtpAssessment:
        frames, offsets_ms, baseline = captured.images, captured.offsets_ms, captured.baseline
        # The card is read on the unflashed baseline frame (the first frame of
        # a bundle without one); the other frames are the flash sequence.
        card = next((i for i, flag in enumerate(baseline) if flag), 0)
        flashed = [i for i in range(len(frames)) if i != card and not _flag(baseline, i)]
        request = capture_quality_pb2.CheckKtpRequest(
            card_image=types_pb2.Image(data=frames[card]),
            submitted_nik=submitted_nik,
            submitted_fields=dict(submitted_fields),
            include_portrait_crops=True,
            flash_frames=[types_pb2.Image(data=frames[i]) for i in flashed],
        )
        reply = await call("capture-quality", self.stub.CheckKtp(request))
        # The card's colour per flash frame, as liveness takes it.
        evidence = tuple(
            liveness_pb2.FrameEvidence(
                frame_index=i,
                offset_ms=offsets_ms[i] if i < len(offsets_ms) else 0,
                colour=colour,
                face_found=True,
            )
            for i, colour in zip(flashed, reply.flash_colours, strict=True)
        )
        return ports.KtpAssessment(
            passed=reply.verdict == _PASS,
            reasons=reasons_from_proto(reply.reasons),
            fields={f.name: ports.KtpField(f.value, f.confidence) for f in reply.fields},
            nik_valid=reply.nik.valid,
            tamper=tuple(
                ports.TamperSignal(t.code, t.score, t.decisive) for t in reply.tamper_signals
            ),
            portrait_found=reply.portrait_found,
            ocr_model=reply.ocr_model,
            portrait_crops=reply.portrait_crops if reply.HasField("portrait_crops") else None,
            frame_evidence=evidence,
        )

    async def crop_portrait(self, image: bytes) -> bytes | None:
        request = capture_quality_pb2.CropPortraitRequest(image=types_pb2.Image(data=image))
        try:
            reply = await call("capture-quality", self.stub.CropPortrait(request))
        except DomainError as error:
            if error.code == "INVALID_ARGUMENT":
                return None  # not an image capture-quality can decode
            raise
        return reply.jpeg


def _flag(flags: Sequence[bool], index: int) -> bool:
    return index < len(flags) and flags[index]


class GrpcEmbedder:
    def __init__(self, clients: ClientFactory):
        self.stub = clients.stub("embedding", embedding_pb2_grpc.EmbeddingServiceStub)

    async def embed(self, crops: object) -> ports.FaceEmbedding:
        aligned = opaque(crops, types_pb2.FaceCrops).aligned
        request = embedding_pb2.EmbedRequest(face=embedding_pb2.FaceInput(aligned=aligned))
        reply = await call("embedding", self.stub.Embed(request))
        contract = reply.embedding.contract
        return ports.FaceEmbedding(contract.model_id, contract.dimension, reply.embedding)
