"""Exit 0 when the scheduler answers SERVING on grpc.health.v1: the image's health check.

python healthcheck.py [ADDRESS]; ADDRESS defaults to TUNER_LISTEN's port on 127.0.0.1.
"""

from __future__ import annotations

import os
import sys

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc


def main(argv: list[str]) -> int:
    port = os.environ.get("TUNER_LISTEN", "0.0.0.0:50051").rpartition(":")[2]
    address = argv[1] if len(argv) > 1 else f"127.0.0.1:{port}"
    with grpc.insecure_channel(address) as channel:
        try:
            reply = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(), timeout=3
            )
        except grpc.RpcError as error:
            print(f"{address}: {error.code().name}", file=sys.stderr)
            return 1
    status = health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)
    print(f"{address}: {status}")
    return 0 if reply.status == health_pb2.HealthCheckResponse.SERVING else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
