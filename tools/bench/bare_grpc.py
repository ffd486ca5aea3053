"""A matching server with nothing of ours in it: grpc.aio (or grpc's thread-pool
server with `--sync`), no interceptor, no auth, no log, no database; Verify and
DescribeThreshold answer a fixed reply. What grpcio itself costs a call on this
machine: the ceiling any service built on it can reach (verify_throughput.py's
"bare" paths).

    .venv/bin/python -m tools.bench.bare_grpc [--sync] [--port 0]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from concurrent import futures
from pathlib import Path

import grpc

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from identity_platform_api.matching.v1 import matching_pb2, matching_pb2_grpc  # noqa: E402

VERIFIED = matching_pb2.VerifyResponse(score=0.5, threshold=0.45, match=True)
THRESHOLD = matching_pb2.DescribeThresholdResponse(threshold=0.45)


class Bare(matching_pb2_grpc.MatchingServiceServicer):
    def Verify(self, request, context):  # type: ignore[no-untyped-def]
        return VERIFIED

    def DescribeThreshold(self, request, context):  # type: ignore[no-untyped-def]
        return THRESHOLD


class BareAio(matching_pb2_grpc.MatchingServiceServicer):
    async def Verify(self, request, context):  # type: ignore[no-untyped-def]
        return VERIFIED

    async def DescribeThreshold(self, request, context):  # type: ignore[no-untyped-def]
        return THRESHOLD


async def serve_aio(port: int) -> None:
    server = grpc.aio.server()
    matching_pb2_grpc.add_MatchingServiceServicer_to_server(BareAio(), server)
    bound = server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    print(f"listening on 127.0.0.1:{bound}", flush=True)
    await server.wait_for_termination()


def serve_sync(port: int) -> None:
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    matching_pb2_grpc.add_MatchingServiceServicer_to_server(Bare(), server)
    bound = server.add_insecure_port(f"127.0.0.1:{port}")
    server.start()
    print(f"listening on 127.0.0.1:{bound}", flush=True)
    server.wait_for_termination()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sync", action="store_true", help="grpc's thread-pool server")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    if args.sync:
        serve_sync(args.port)
    else:
        asyncio.run(serve_aio(args.port))


if __name__ == "__main__":
    main()
