"""The embedding service on real models: aligned and landmarked inputs, batches, an
operator model with another dimension, and a real Triton server against in-process."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import grpc
import numpy as np
import pytest
import pytest_asyncio
from onnx import TensorProto, helper, numpy_helper

from identity_inference.manifest import ModelIntegrityError
from identity_inference.triton_repo import LocalTritonServer, materialise, triton_available
from identity_platform_api.capture_quality.v1 import capture_quality_pb2, capture_quality_pb2_grpc
from identity_platform_api.common.v1 import types_pb2
from identity_platform_api.embedding.v1 import embedding_pb2, embedding_pb2_grpc
from identity_runtime.status import error_info, status_from_rpc_error
from services.capture_quality.service import SPEC as CAPTURE_QUALITY
from services.embedding.service import SPEC as EMBEDDING
from tests.support import channel, start_service, unavailable
from tests.support.biometrics import FACES, photo_bytes

pytestmark = [pytest.mark.models]

# One identity with several photos, and others (testdata README).
SAME = ["img1.jpg", "img2.jpg", "img4.jpg", "img5.jpg"]
OTHERS = ["img20.jpg", "img30.jpg", "img44.jpg"]


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def crops():
    """Aligned crops and landmarks of test photos, from the capture-quality service."""
    server = await start_service(CAPTURE_QUALITY)
    out = {}
    try:
        async with channel(server) as ch:
            stub = capture_quality_pb2_grpc.CaptureQualityServiceStub(ch)
            for name in SAME + OTHERS:
                data = photo_bytes(FACES / name)
                reply = await stub.AssessFace(
                    capture_quality_pb2.AssessFaceRequest(
                        frames=[types_pb2.Image(data=data)],
                        kind=capture_quality_pb2.CAPTURE_KIND_REFERENCE,
                        include_crops=True,
                    )
                )
                out[name] = (data, reply.frames[0].faces[0], reply.crops.aligned)
    finally:
        await server.stop(0)
    return out


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def embedding_server():
    server = await start_service(EMBEDDING)
    yield server
    await server.stop(0)


def aligned_input(crop) -> embedding_pb2.FaceInput:
    return embedding_pb2.FaceInput(aligned=crop)


def landmarked_input(data: bytes, face) -> embedding_pb2.FaceInput:
    return embedding_pb2.FaceInput(
        landmarked=embedding_pb2.LandmarkedImage(
            image=types_pb2.Image(data=data), landmarks=list(face.landmarks)
        )
    )


def vector(embedding) -> np.ndarray:
    return np.array(embedding.values, dtype=np.float64)


async def test_model_info_reports_the_manifest_contract(embedding_server) -> None:
    async with channel(embedding_server) as ch:
        info = await embedding_pb2_grpc.EmbeddingServiceStub(ch).GetModelInfo(
            embedding_pb2.GetModelInfoRequest()
        )
    assert (info.contract.model_id, info.contract.dimension) == ("sface-2021dec", 128)
    assert info.backend == "onnxruntime"
    assert info.licence == "Apache-2.0"
    assert 0.2 < info.default_threshold < 0.6


async def test_aligned_and_landmarked_inputs_give_the_same_embedding(
    embedding_server, crops
) -> None:
    async with channel(embedding_server) as ch:
        stub = embedding_pb2_grpc.EmbeddingServiceStub(ch)
        for name in SAME[:2]:
            data, face, aligned = crops[name]
            a = vector(
                (
                    await stub.Embed(embedding_pb2.EmbedRequest(face=aligned_input(aligned)))
                ).embedding
            )
            b = vector(
                (
                    await stub.Embed(embedding_pb2.EmbedRequest(face=landmarked_input(data, face)))
                ).embedding
            )
            assert len(a) == 128
            assert abs(np.linalg.norm(a) - 1) < 1e-5
            assert float(a @ b) > 0.9999


async def test_batch_matches_single_calls_and_separates_identities(embedding_server, crops) -> None:
    names = SAME + OTHERS
    async with channel(embedding_server) as ch:
        stub = embedding_pb2_grpc.EmbeddingServiceStub(ch)
        batch = await stub.EmbedBatch(
            embedding_pb2.EmbedBatchRequest(faces=[aligned_input(crops[n][2]) for n in names])
        )
        single = await stub.Embed(
            embedding_pb2.EmbedRequest(face=aligned_input(crops[names[0]][2]))
        )
    vectors = np.array([vector(e) for e in batch.embeddings])
    assert vectors.shape == (len(names), 128)
    assert float(vectors[0] @ vector(single.embedding)) > 0.99999
    similarity = vectors @ vectors.T
    genuine = [similarity[i, j] for i in range(len(SAME)) for j in range(i + 1, len(SAME))]
    impostor = [similarity[i, j] for i in range(len(SAME)) for j in range(len(SAME), len(names))]
    assert min(genuine) > max(impostor)


async def test_bad_inputs_are_invalid_argument(embedding_server, crops) -> None:
    data, face, aligned = crops[SAME[0]]
    wrong_size = types_pb2.AlignedFace(
        image=types_pb2.RawImage(
            width=100, height=100, format=types_pb2.PIXEL_FORMAT_BGR8, pixels=b"\0" * 30000
        )
    )
    short = types_pb2.AlignedFace(
        image=types_pb2.RawImage(
            width=112, height=112, format=types_pb2.PIXEL_FORMAT_BGR8, pixels=b"\0" * 100
        )
    )
    cases = [
        (embedding_pb2.FaceInput(aligned=wrong_size), "RAW_IMAGE_INVALID"),
        (embedding_pb2.FaceInput(aligned=short), "RAW_IMAGE_INVALID"),
        (landmarked_input(data[: len(data) // 2], face), "IMAGE_UNDECODABLE"),
        (landmarked_input(b"", face), "IMAGE_EMPTY"),
        (embedding_pb2.FaceInput(), "INVALID_FIELD"),
    ]
    async with channel(embedding_server) as ch:
        stub = embedding_pb2_grpc.EmbeddingServiceStub(ch)
        for face_input, reason in cases:
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await stub.Embed(embedding_pb2.EmbedRequest(face=face_input))
            assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
            assert error_info(status_from_rpc_error(caught.value)).reason == reason
        with pytest.raises(grpc.aio.AioRpcError) as empty:
            await stub.EmbedBatch(embedding_pb2.EmbedBatchRequest())
        assert empty.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def _operator_model(directory: Path, dimension: int) -> str:
    """A stand-in for the operator's ArcFace-512 (`qe-face-v3`): a real ONNX
    graph with a 512-d output, described by its own manifest."""
    rng = np.random.default_rng(7)
    weight = rng.standard_normal((3 * 112 * 112, dimension)).astype(np.float32) / 100
    graph = helper.make_graph(
        [
            helper.make_node("Flatten", ["input.1"], ["flat"], axis=1),
            helper.make_node("MatMul", ["flat", "w"], ["embedding"]),
        ],
        "qe-face-stand-in",
        [helper.make_tensor_value_info("input.1", TensorProto.FLOAT, ["batch", 3, 112, 112])],
        [helper.make_tensor_value_info("embedding", TensorProto.FLOAT, ["batch", dimension])],
        [numpy_helper.from_array(weight, "w")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    data = model.SerializeToString()
    (directory / "qe-face-v3.onnx").write_bytes(data)
    manifest = {
        "id": "qe-face-v3",
        "version": "test-stand-in",
        "role": "face_embedding",
        "file": "qe-face-v3.onnx",
        "sha256": hashlib.sha256(data).hexdigest(),
        "licence": "proprietary (operator)",
        "prepare": {"dynamic_batch": True},
        "inputs": [{"name": "input.1", "shape": [-1, 3, 112, 112]}],
        "outputs": [{"name": "embedding", "shape": [-1, dimension]}],
        "embedding_dimension": dimension,
        "parameters": {"input_colour": "rgb", "input_mean": 127.5, "input_std": 127.5},
        "thresholds": {"verification": 0.45},
    }
    (directory / "qe-face-v3.json").write_text(json.dumps(manifest))
    return manifest["sha256"]


async def test_an_operator_model_brings_its_own_dimension(tmp_path: Path, crops) -> None:
    _operator_model(tmp_path, 512)
    server = await start_service(
        EMBEDDING, {"EMBEDDING_MODEL_DIR": str(tmp_path), "EMBEDDING_EMBEDDING_MODEL": "qe-face-v3"}
    )
    try:
        async with channel(server) as ch:
            stub = embedding_pb2_grpc.EmbeddingServiceStub(ch)
            info = await stub.GetModelInfo(embedding_pb2.GetModelInfoRequest())
            reply = await stub.Embed(
                embedding_pb2.EmbedRequest(face=aligned_input(crops[SAME[0]][2]))
            )
    finally:
        await server.stop(0)
    assert (info.contract.model_id, info.contract.dimension, info.default_threshold) == (
        "qe-face-v3",
        512,
        pytest.approx(0.45),
    )
    assert reply.embedding.contract.dimension == 512
    assert len(reply.embedding.values) == 512


async def test_an_altered_operator_model_stops_the_service(tmp_path: Path) -> None:
    expected = _operator_model(tmp_path, 512)
    path = tmp_path / "qe-face-v3.onnx"
    path.write_bytes(path.read_bytes()[:-1] + b"\x00")
    with pytest.raises(ModelIntegrityError) as caught:
        await start_service(
            EMBEDDING,
            {"EMBEDDING_MODEL_DIR": str(tmp_path), "EMBEDDING_EMBEDDING_MODEL": "qe-face-v3"},
        )
    assert str(path) in str(caught.value) and expected in str(caught.value)


@pytest.fixture(scope="module")
def triton(tmp_path_factory):
    problem = triton_available()
    if problem:
        unavailable("the Triton server", problem)
    repository = tmp_path_factory.mktemp("triton-repo")
    materialise(repository, models=("sface-2021dec",), backend="python")
    server = LocalTritonServer(repository).start()
    yield server
    server.stop()


@pytest.mark.triton
@pytest.mark.slow
async def test_triton_and_in_process_embeddings_agree(triton, embedding_server, crops) -> None:
    remote = await start_service(
        EMBEDDING, {"EMBEDDING_BACKEND": "triton", "EMBEDDING_TRITON_URL": triton.url}
    )
    names = SAME + OTHERS
    request = embedding_pb2.EmbedBatchRequest(faces=[aligned_input(crops[n][2]) for n in names])
    try:
        async with channel(remote) as r, channel(embedding_server) as local:
            info = await embedding_pb2_grpc.EmbeddingServiceStub(r).GetModelInfo(
                embedding_pb2.GetModelInfoRequest()
            )
            via_triton = await embedding_pb2_grpc.EmbeddingServiceStub(r).EmbedBatch(request)
            in_process = await embedding_pb2_grpc.EmbeddingServiceStub(local).EmbedBatch(request)
            one = await embedding_pb2_grpc.EmbeddingServiceStub(r).Embed(
                embedding_pb2.EmbedRequest(
                    face=landmarked_input(crops[names[0]][0], crops[names[0]][1])
                )
            )
    finally:
        await remote.stop(0)
    assert info.backend == "triton"
    for a, b in zip(via_triton.embeddings, in_process.embeddings, strict=True):
        assert a.contract == b.contract
        assert float(vector(a) @ vector(b)) > 0.999
    assert float(vector(one.embedding) @ vector(in_process.embeddings[0])) > 0.999


@pytest.mark.triton
async def test_a_model_missing_from_triton_stops_the_service(triton) -> None:
    with pytest.raises(ModelIntegrityError, match="'qe-face-v3' is not ready"):
        await start_service(
            EMBEDDING,
            {
                "EMBEDDING_BACKEND": "triton",
                "EMBEDDING_TRITON_URL": triton.url,
                "EMBEDDING_TRITON_MODEL_NAME": "qe-face-v3",
            },
        )
