import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from tuner.v1 import job_pb2 as _job_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class JobEvent(_message.Message):
    __slots__ = ("sequence", "job_id", "run", "attempt", "time", "epochs", "started", "progress", "epoch_completed", "succeeded", "failed", "state_changed")
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    RUN_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    TIME_FIELD_NUMBER: _ClassVar[int]
    EPOCHS_FIELD_NUMBER: _ClassVar[int]
    STARTED_FIELD_NUMBER: _ClassVar[int]
    PROGRESS_FIELD_NUMBER: _ClassVar[int]
    EPOCH_COMPLETED_FIELD_NUMBER: _ClassVar[int]
    SUCCEEDED_FIELD_NUMBER: _ClassVar[int]
    FAILED_FIELD_NUMBER: _ClassVar[int]
    STATE_CHANGED_FIELD_NUMBER: _ClassVar[int]
    sequence: int
    job_id: str
    run: int
    attempt: int
    time: _timestamp_pb2.Timestamp
    epochs: _containers.RepeatedCompositeFieldContainer[_job_pb2.EpochMetrics]
    started: JobStarted
    progress: _job_pb2.Progress
    epoch_completed: _job_pb2.EpochMetrics
    succeeded: _job_pb2.Result
    failed: JobFailure
    state_changed: StateChange
    def __init__(self, sequence: _Optional[int] = ..., job_id: _Optional[str] = ..., run: _Optional[int] = ..., attempt: _Optional[int] = ..., time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., epochs: _Optional[_Iterable[_Union[_job_pb2.EpochMetrics, _Mapping]]] = ..., started: _Optional[_Union[JobStarted, _Mapping]] = ..., progress: _Optional[_Union[_job_pb2.Progress, _Mapping]] = ..., epoch_completed: _Optional[_Union[_job_pb2.EpochMetrics, _Mapping]] = ..., succeeded: _Optional[_Union[_job_pb2.Result, _Mapping]] = ..., failed: _Optional[_Union[JobFailure, _Mapping]] = ..., state_changed: _Optional[_Union[StateChange, _Mapping]] = ...) -> None: ...

class JobStarted(_message.Message):
    __slots__ = ("trainer", "device")
    TRAINER_FIELD_NUMBER: _ClassVar[int]
    DEVICE_FIELD_NUMBER: _ClassVar[int]
    trainer: str
    device: str
    def __init__(self, trainer: _Optional[str] = ..., device: _Optional[str] = ...) -> None: ...

class JobFailure(_message.Message):
    __slots__ = ("reason",)
    REASON_FIELD_NUMBER: _ClassVar[int]
    reason: str
    def __init__(self, reason: _Optional[str] = ...) -> None: ...

class StateChange(_message.Message):
    __slots__ = ("job",)
    JOB_FIELD_NUMBER: _ClassVar[int]
    job: _job_pb2.Job
    def __init__(self, job: _Optional[_Union[_job_pb2.Job, _Mapping]] = ...) -> None: ...

class TrainRequest(_message.Message):
    __slots__ = ("job_id", "run", "hyperparameters")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    RUN_FIELD_NUMBER: _ClassVar[int]
    HYPERPARAMETERS_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    run: int
    hyperparameters: _job_pb2.Hyperparameters
    def __init__(self, job_id: _Optional[str] = ..., run: _Optional[int] = ..., hyperparameters: _Optional[_Union[_job_pb2.Hyperparameters, _Mapping]] = ...) -> None: ...

class JobCancellation(_message.Message):
    __slots__ = ("job_id", "run")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    RUN_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    run: int
    def __init__(self, job_id: _Optional[str] = ..., run: _Optional[int] = ...) -> None: ...
