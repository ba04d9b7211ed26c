"""Every RPC driven with arbitrary values: clear answers only, the services stay up."""

from __future__ import annotations

import importlib
import pkgutil
import random
import string
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import grpc
import pytest
from google.protobuf.descriptor import MethodDescriptor
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import tuner.v1
from tests.support.stack import RunningStack, mongo_client, start_stack
from tuner.core.hyperparameters import normalized
from tuner.v1 import job_pb2, tuner_service_pb2, tuner_service_pb2_grpc

CLEAR = {grpc.StatusCode.OK, grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.NOT_FOUND}
NORMAL = CLEAR | {
    grpc.StatusCode.PERMISSION_DENIED,
    grpc.StatusCode.FAILED_PRECONDITION,
    grpc.StatusCode.RESOURCE_EXHAUSTED,
    grpc.StatusCode.CANCELLED,  # a stream the test stopped
}

int32 = st.integers(-(2**31), 2**31 - 1)
int64 = st.integers(-(2**63), 2**63 - 1)
enum = st.integers(-3, 12)
texts = st.one_of(st.text(max_size=50), st.text(min_size=1000, max_size=5000), st.just(""))
hyperparameters = st.builds(  # often valid, so that some jobs are stored too
    job_pb2.Hyperparameters,
    epochs=st.integers(1, 100) | int32,
    learning_rate=st.floats(1e-6, 10) | st.floats(allow_nan=True, allow_infinity=True),
    batch_size=st.integers(1, 8192) | int32,
    dataset=enum,
    model=enum,
    optimizer=enum,
    seed=st.integers(0, 2**63 - 1) | int64,
)
users = st.text(alphabet=string.ascii_letters + string.digits + "._-@+ !$%", max_size=200)
FUZZ = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@pytest.fixture(scope="module")
def idle_stack(tmp_path_factory: pytest.TempPathFactory, data_dir: Path) -> Iterator[RunningStack]:
    """No trainer: valid jobs stay queued, so nothing trains."""
    running = start_stack(
        tmp_path_factory.mktemp("fuzz"), data_dir, trainers=0, TUNER_MAX_ACTIVE_PER_USER="100000"
    )
    try:
        yield running
    finally:
        running.stack.stop()


@pytest.fixture(scope="module")
def stub(idle_stack: RunningStack) -> Iterator[tuner_service_pb2_grpc.TunerServiceStub]:
    with grpc.insecure_channel(idle_stack.address) as channel:
        yield tuner_service_pb2_grpc.TunerServiceStub(channel)


def answer(  # every refusal is clear and names its field first
    call: grpc.UnaryUnaryMultiCallable[Any, Any], request: object, user: str
) -> None:
    try:
        call(request, metadata=(("tuner-user", user),), timeout=30)
    except grpc.RpcError as error:
        code, details = error.code(), error.details() or ""
        assert code in CLEAR, (code, details)
        assert details.split(": ")[0] in FIELDS, details


HYPERPARAMETERS = ["epochs", "learning_rate", "batch_size", "dataset", "model", "optimizer", "seed"]
FIELDS = {"hyperparameters", *(f"hyperparameters.{name}" for name in HYPERPARAMETERS)} | {
    "job_id", "page_size", "page_token", "states", "limit", "tuner-user"
}  # fmt: skip


@FUZZ
@given(hp=hyperparameters, user=st.sampled_from(["fuzz", "fuzz2"]) | users)
def test_submit_and_find(
    stub: tuner_service_pb2_grpc.TunerServiceStub, hp: job_pb2.Hyperparameters, user: str
) -> None:
    answer(stub.SubmitJob, tuner_service_pb2.SubmitJobRequest(hyperparameters=hp), user)
    answer(stub.FindJob, tuner_service_pb2.FindJobRequest(hyperparameters=hp), user)


@FUZZ
@given(job_id=texts | st.text(alphabet="0123456789abcdef", min_size=32, max_size=32))
def test_get_cancel_and_watch_by_id(
    stub: tuner_service_pb2_grpc.TunerServiceStub, job_id: str
) -> None:
    answer(stub.GetJob, tuner_service_pb2.GetJobRequest(job_id=job_id), "fuzz")
    answer(stub.CancelJob, tuner_service_pb2.CancelJobRequest(job_id=job_id), "fuzz")
    request = tuner_service_pb2.WatchJobRequest(job_id=job_id, after_sequence=7)
    try:
        for _ in stub.WatchJob(request, metadata=(("tuner-user", "fuzz"),), timeout=3):
            pass
    except grpc.RpcError as error:
        assert error.code() in CLEAR | {grpc.StatusCode.DEADLINE_EXCEEDED}


@FUZZ
@given(size=int32, token=texts, states=st.lists(enum, max_size=5), limit=int32)
def test_list_and_leaderboard(
    stub: tuner_service_pb2_grpc.TunerServiceStub,
    size: int,
    token: str,
    states: list[int],
    limit: int,
) -> None:
    # Arbitrary numbers where the enum goes: the server must refuse the unknown ones clearly.
    wire_states = cast("list[job_pb2.JobState]", states)
    request = tuner_service_pb2.ListJobsRequest(
        page_size=size, page_token=token, states=wire_states
    )
    answer(stub.ListJobs, request, "fuzz")
    answer(stub.GetLeaderboard, tuner_service_pb2.GetLeaderboardRequest(limit=limit), "fuzz")


def every_method() -> list[MethodDescriptor]:
    """Each RPC of each tuner.v1 service, read from the generated modules' descriptors."""
    methods: list[MethodDescriptor] = []
    for module in pkgutil.iter_modules(tuner.v1.__path__):
        if module.name.endswith("_pb2"):
            file = importlib.import_module(f"tuner.v1.{module.name}").DESCRIPTOR
            for service in file.services_by_name.values():
                methods.extend(service.methods)
    return methods


def raw_payloads() -> list[bytes]:
    """Random bytes, every truncation of two valid requests, and a string that is not UTF-8."""
    rng = random.Random(600)
    noise = [rng.randbytes(rng.randint(1, 48)) for _ in range(30)]
    hp = job_pb2.Hyperparameters(epochs=2, learning_rate=0.01, batch_size=64, seed=2**40)
    valid = [
        tuner_service_pb2.SubmitJobRequest(hyperparameters=hp).SerializeToString(),
        tuner_service_pb2.WatchJobRequest(job_id="ab" * 16, after_sequence=7).SerializeToString(),
    ]
    truncated = [data[:end] for data in valid for end in range(1, len(data))]
    return [*noise, *truncated, b"\n\x02\xff\xfe"]


def send_raw(channel: grpc.Channel, method: MethodDescriptor, payload: bytes) -> Any:
    """The call, started: a grpc.Future whatever the method's kind."""
    kinds = {
        (False, False): channel.unary_unary,
        (False, True): channel.unary_stream,
        (True, False): channel.stream_unary,
        (True, True): channel.stream_stream,
    }
    call: Any = kinds[method.client_streaming, method.server_streaming](
        f"/{method.containing_service.full_name}/{method.name}"
    )  # no serializers: the bytes go as they are
    request = iter([payload]) if method.client_streaming else payload
    start = call if method.server_streaming else call.future
    return start(request, metadata=(("tuner-user", "fuzz"),), timeout=60)


def test_bytes_that_are_no_request_answer_invalid_argument_without_a_traceback(
    idle_stack: RunningStack,
) -> None:
    methods, payloads = every_method(), raw_payloads()
    assert {m.containing_service.name for m in methods} >= {"TunerService"}
    with grpc.insecure_channel(idle_stack.address) as channel:
        calls = [(m, send_raw(channel, m, p)) for m in methods for p in payloads]
        streams_end = time.monotonic() + 5  # a stream that is still going is a normal answer
        for method, call in calls:
            if method.server_streaming:
                done = threading.Event()
                call.add_done_callback(lambda _, done=done: done.set())
                if not done.wait(max(0.0, streams_end - time.monotonic())):
                    call.cancel()
            else:
                call.exception()  # waits for its end
    refused = 0
    for method, call in calls:
        code, details = call.code(), call.details() or ""
        assert code in NORMAL, (method.full_name, code, details)
        if details.startswith("request: "):
            assert details == f"request: not a valid {method.input_type.full_name} message"
            refused += 1
    assert refused >= len(methods), "each method refused some payloads"
    log = idle_stack.log("scheduler")
    assert "Traceback" not in log
    assert log.count(": the request is not a valid ") == refused, "one warning line each"


def test_afterwards_the_services_are_up_and_the_database_holds_only_valid_jobs(
    stub: tuner_service_pb2_grpc.TunerServiceStub, idle_stack: RunningStack
) -> None:
    for name, process in idle_stack.stack.processes:
        assert process.poll() is None, f"{name} died"
    with mongo_client(idle_stack.mongo_uri) as mongo:
        docs = list(mongo.tuner.jobs.find({}))
    assert docs, "some valid configurations were queued"
    from store.documents import hyperparameters_from

    for doc in docs:
        assert doc["state"] == "QUEUED"
        normalized(hyperparameters_from(doc["hyperparameters"]))
