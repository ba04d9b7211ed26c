from tuner.v1 import event_pb2 as _event_pb2
from tuner.v1 import job_pb2 as _job_pb2
from tuner.v1 import trainer_pb2 as _trainer_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class SubmitJobRequest(_message.Message):
    __slots__ = ("hyperparameters",)
    HYPERPARAMETERS_FIELD_NUMBER: _ClassVar[int]
    hyperparameters: _job_pb2.Hyperparameters
    def __init__(self, hyperparameters: _Optional[_Union[_job_pb2.Hyperparameters, _Mapping]] = ...) -> None: ...

class SubmitJobResponse(_message.Message):
    __slots__ = ("job", "deduplicated", "trainers_connected", "reused_epochs")
    JOB_FIELD_NUMBER: _ClassVar[int]
    DEDUPLICATED_FIELD_NUMBER: _ClassVar[int]
    TRAINERS_CONNECTED_FIELD_NUMBER: _ClassVar[int]
    REUSED_EPOCHS_FIELD_NUMBER: _ClassVar[int]
    job: _job_pb2.Job
    deduplicated: bool
    trainers_connected: int
    reused_epochs: int
    def __init__(self, job: _Optional[_Union[_job_pb2.Job, _Mapping]] = ..., deduplicated: _Optional[bool] = ..., trainers_connected: _Optional[int] = ..., reused_epochs: _Optional[int] = ...) -> None: ...

class GetJobRequest(_message.Message):
    __slots__ = ("job_id",)
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    def __init__(self, job_id: _Optional[str] = ...) -> None: ...

class GetJobResponse(_message.Message):
    __slots__ = ("job",)
    JOB_FIELD_NUMBER: _ClassVar[int]
    job: _job_pb2.Job
    def __init__(self, job: _Optional[_Union[_job_pb2.Job, _Mapping]] = ...) -> None: ...

class FindJobRequest(_message.Message):
    __slots__ = ("hyperparameters",)
    HYPERPARAMETERS_FIELD_NUMBER: _ClassVar[int]
    hyperparameters: _job_pb2.Hyperparameters
    def __init__(self, hyperparameters: _Optional[_Union[_job_pb2.Hyperparameters, _Mapping]] = ...) -> None: ...

class FindJobResponse(_message.Message):
    __slots__ = ("job",)
    JOB_FIELD_NUMBER: _ClassVar[int]
    job: _job_pb2.Job
    def __init__(self, job: _Optional[_Union[_job_pb2.Job, _Mapping]] = ...) -> None: ...

class ListJobsRequest(_message.Message):
    __slots__ = ("states", "page_size", "page_token")
    STATES_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    states: _containers.RepeatedScalarFieldContainer[_job_pb2.JobState]
    page_size: int
    page_token: str
    def __init__(self, states: _Optional[_Iterable[_Union[_job_pb2.JobState, str]]] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListJobsResponse(_message.Message):
    __slots__ = ("jobs", "next_page_token")
    JOBS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    jobs: _containers.RepeatedCompositeFieldContainer[_job_pb2.Job]
    next_page_token: str
    def __init__(self, jobs: _Optional[_Iterable[_Union[_job_pb2.Job, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class GetLeaderboardRequest(_message.Message):
    __slots__ = ("limit", "dataset", "model")
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    DATASET_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    limit: int
    dataset: _job_pb2.Dataset
    model: _job_pb2.Model
    def __init__(self, limit: _Optional[int] = ..., dataset: _Optional[_Union[_job_pb2.Dataset, str]] = ..., model: _Optional[_Union[_job_pb2.Model, str]] = ...) -> None: ...

class GetLeaderboardResponse(_message.Message):
    __slots__ = ("jobs",)
    JOBS_FIELD_NUMBER: _ClassVar[int]
    jobs: _containers.RepeatedCompositeFieldContainer[_job_pb2.Job]
    def __init__(self, jobs: _Optional[_Iterable[_Union[_job_pb2.Job, _Mapping]]] = ...) -> None: ...

class CancelJobRequest(_message.Message):
    __slots__ = ("job_id",)
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    def __init__(self, job_id: _Optional[str] = ...) -> None: ...

class CancelJobResponse(_message.Message):
    __slots__ = ("job",)
    JOB_FIELD_NUMBER: _ClassVar[int]
    job: _job_pb2.Job
    def __init__(self, job: _Optional[_Union[_job_pb2.Job, _Mapping]] = ...) -> None: ...

class WatchJobRequest(_message.Message):
    __slots__ = ("job_id", "after_sequence")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    AFTER_SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    after_sequence: int
    def __init__(self, job_id: _Optional[str] = ..., after_sequence: _Optional[int] = ...) -> None: ...

class WatchJobResponse(_message.Message):
    __slots__ = ("job", "event")
    JOB_FIELD_NUMBER: _ClassVar[int]
    EVENT_FIELD_NUMBER: _ClassVar[int]
    job: _job_pb2.Job
    event: _event_pb2.JobEvent
    def __init__(self, job: _Optional[_Union[_job_pb2.Job, _Mapping]] = ..., event: _Optional[_Union[_event_pb2.JobEvent, _Mapping]] = ...) -> None: ...

class WatchEventsRequest(_message.Message):
    __slots__ = ("after_sequence", "include_trainers")
    AFTER_SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    INCLUDE_TRAINERS_FIELD_NUMBER: _ClassVar[int]
    after_sequence: int
    include_trainers: bool
    def __init__(self, after_sequence: _Optional[int] = ..., include_trainers: _Optional[bool] = ...) -> None: ...

class WatchEventsResponse(_message.Message):
    __slots__ = ("event", "trainer_change", "trainer_set")
    EVENT_FIELD_NUMBER: _ClassVar[int]
    TRAINER_CHANGE_FIELD_NUMBER: _ClassVar[int]
    TRAINER_SET_FIELD_NUMBER: _ClassVar[int]
    event: _event_pb2.JobEvent
    trainer_change: _trainer_pb2.TrainerChange
    trainer_set: _trainer_pb2.TrainerSet
    def __init__(self, event: _Optional[_Union[_event_pb2.JobEvent, _Mapping]] = ..., trainer_change: _Optional[_Union[_trainer_pb2.TrainerChange, _Mapping]] = ..., trainer_set: _Optional[_Union[_trainer_pb2.TrainerSet, _Mapping]] = ...) -> None: ...

class ListTrainersRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListTrainersResponse(_message.Message):
    __slots__ = ("trainers",)
    TRAINERS_FIELD_NUMBER: _ClassVar[int]
    trainers: _containers.RepeatedCompositeFieldContainer[_trainer_pb2.TrainerStatus]
    def __init__(self, trainers: _Optional[_Iterable[_Union[_trainer_pb2.TrainerStatus, _Mapping]]] = ...) -> None: ...

class GetStatusRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GetCallerRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GetCallerResponse(_message.Message):
    __slots__ = ("user",)
    USER_FIELD_NUMBER: _ClassVar[int]
    user: str
    def __init__(self, user: _Optional[str] = ...) -> None: ...

class ComponentStatus(_message.Message):
    __slots__ = ("name", "reachable", "detail")
    NAME_FIELD_NUMBER: _ClassVar[int]
    REACHABLE_FIELD_NUMBER: _ClassVar[int]
    DETAIL_FIELD_NUMBER: _ClassVar[int]
    name: str
    reachable: bool
    detail: str
    def __init__(self, name: _Optional[str] = ..., reachable: _Optional[bool] = ..., detail: _Optional[str] = ...) -> None: ...

class StreamStatus(_message.Message):
    __slots__ = ("name", "messages")
    NAME_FIELD_NUMBER: _ClassVar[int]
    MESSAGES_FIELD_NUMBER: _ClassVar[int]
    name: str
    messages: int
    def __init__(self, name: _Optional[str] = ..., messages: _Optional[int] = ...) -> None: ...

class ConsumerStatus(_message.Message):
    __slots__ = ("stream", "name", "pending", "ack_pending", "redelivered")
    STREAM_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    PENDING_FIELD_NUMBER: _ClassVar[int]
    ACK_PENDING_FIELD_NUMBER: _ClassVar[int]
    REDELIVERED_FIELD_NUMBER: _ClassVar[int]
    stream: str
    name: str
    pending: int
    ack_pending: int
    redelivered: int
    def __init__(self, stream: _Optional[str] = ..., name: _Optional[str] = ..., pending: _Optional[int] = ..., ack_pending: _Optional[int] = ..., redelivered: _Optional[int] = ...) -> None: ...

class JobStateCount(_message.Message):
    __slots__ = ("state", "count", "at_least")
    STATE_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    AT_LEAST_FIELD_NUMBER: _ClassVar[int]
    state: _job_pb2.JobState
    count: int
    at_least: bool
    def __init__(self, state: _Optional[_Union[_job_pb2.JobState, str]] = ..., count: _Optional[int] = ..., at_least: _Optional[bool] = ...) -> None: ...

class GetStatusResponse(_message.Message):
    __slots__ = ("components", "jobs_stream", "trainers_consumer", "scheduler_consumer", "trainers", "jobs")
    COMPONENTS_FIELD_NUMBER: _ClassVar[int]
    JOBS_STREAM_FIELD_NUMBER: _ClassVar[int]
    TRAINERS_CONSUMER_FIELD_NUMBER: _ClassVar[int]
    SCHEDULER_CONSUMER_FIELD_NUMBER: _ClassVar[int]
    TRAINERS_FIELD_NUMBER: _ClassVar[int]
    JOBS_FIELD_NUMBER: _ClassVar[int]
    components: _containers.RepeatedCompositeFieldContainer[ComponentStatus]
    jobs_stream: StreamStatus
    trainers_consumer: ConsumerStatus
    scheduler_consumer: ConsumerStatus
    trainers: _containers.RepeatedCompositeFieldContainer[_trainer_pb2.TrainerStatus]
    jobs: _containers.RepeatedCompositeFieldContainer[JobStateCount]
    def __init__(self, components: _Optional[_Iterable[_Union[ComponentStatus, _Mapping]]] = ..., jobs_stream: _Optional[_Union[StreamStatus, _Mapping]] = ..., trainers_consumer: _Optional[_Union[ConsumerStatus, _Mapping]] = ..., scheduler_consumer: _Optional[_Union[ConsumerStatus, _Mapping]] = ..., trainers: _Optional[_Iterable[_Union[_trainer_pb2.TrainerStatus, _Mapping]]] = ..., jobs: _Optional[_Iterable[_Union[JobStateCount, _Mapping]]] = ...) -> None: ...

class GetModelRequest(_message.Message):
    __slots__ = ("job_id", "format")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    FORMAT_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    format: _job_pb2.ModelFormat
    def __init__(self, job_id: _Optional[str] = ..., format: _Optional[_Union[_job_pb2.ModelFormat, str]] = ...) -> None: ...

class ModelHeader(_message.Message):
    __slots__ = ("job_id", "format", "size", "sha256")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    FORMAT_FIELD_NUMBER: _ClassVar[int]
    SIZE_FIELD_NUMBER: _ClassVar[int]
    SHA256_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    format: _job_pb2.ModelFormat
    size: int
    sha256: str
    def __init__(self, job_id: _Optional[str] = ..., format: _Optional[_Union[_job_pb2.ModelFormat, str]] = ..., size: _Optional[int] = ..., sha256: _Optional[str] = ...) -> None: ...

class GetModelResponse(_message.Message):
    __slots__ = ("header", "chunk")
    HEADER_FIELD_NUMBER: _ClassVar[int]
    CHUNK_FIELD_NUMBER: _ClassVar[int]
    header: ModelHeader
    chunk: bytes
    def __init__(self, header: _Optional[_Union[ModelHeader, _Mapping]] = ..., chunk: _Optional[bytes] = ...) -> None: ...
