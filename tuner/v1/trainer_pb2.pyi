import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from tuner.v1 import job_pb2 as _job_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class TrainerChangeKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    TRAINER_CHANGE_KIND_UNSPECIFIED: _ClassVar[TrainerChangeKind]
    TRAINER_CHANGE_KIND_APPEARED: _ClassVar[TrainerChangeKind]
    TRAINER_CHANGE_KIND_CHANGED: _ClassVar[TrainerChangeKind]
    TRAINER_CHANGE_KIND_LEFT: _ClassVar[TrainerChangeKind]
TRAINER_CHANGE_KIND_UNSPECIFIED: TrainerChangeKind
TRAINER_CHANGE_KIND_APPEARED: TrainerChangeKind
TRAINER_CHANGE_KIND_CHANGED: TrainerChangeKind
TRAINER_CHANGE_KIND_LEFT: TrainerChangeKind

class TrainerStatus(_message.Message):
    __slots__ = ("name", "host", "device", "torch_threads", "job_id", "run", "progress", "jobs_done", "start_time", "send_time", "goodbye", "receive_time", "ready")
    NAME_FIELD_NUMBER: _ClassVar[int]
    HOST_FIELD_NUMBER: _ClassVar[int]
    DEVICE_FIELD_NUMBER: _ClassVar[int]
    TORCH_THREADS_FIELD_NUMBER: _ClassVar[int]
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    RUN_FIELD_NUMBER: _ClassVar[int]
    PROGRESS_FIELD_NUMBER: _ClassVar[int]
    JOBS_DONE_FIELD_NUMBER: _ClassVar[int]
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    SEND_TIME_FIELD_NUMBER: _ClassVar[int]
    GOODBYE_FIELD_NUMBER: _ClassVar[int]
    RECEIVE_TIME_FIELD_NUMBER: _ClassVar[int]
    READY_FIELD_NUMBER: _ClassVar[int]
    name: str
    host: str
    device: str
    torch_threads: int
    job_id: str
    run: int
    progress: _job_pb2.Progress
    jobs_done: int
    start_time: _timestamp_pb2.Timestamp
    send_time: _timestamp_pb2.Timestamp
    goodbye: bool
    receive_time: _timestamp_pb2.Timestamp
    ready: bool
    def __init__(self, name: _Optional[str] = ..., host: _Optional[str] = ..., device: _Optional[str] = ..., torch_threads: _Optional[int] = ..., job_id: _Optional[str] = ..., run: _Optional[int] = ..., progress: _Optional[_Union[_job_pb2.Progress, _Mapping]] = ..., jobs_done: _Optional[int] = ..., start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., send_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., goodbye: _Optional[bool] = ..., receive_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., ready: _Optional[bool] = ...) -> None: ...

class TrainerChange(_message.Message):
    __slots__ = ("kind", "trainer")
    KIND_FIELD_NUMBER: _ClassVar[int]
    TRAINER_FIELD_NUMBER: _ClassVar[int]
    kind: TrainerChangeKind
    trainer: TrainerStatus
    def __init__(self, kind: _Optional[_Union[TrainerChangeKind, str]] = ..., trainer: _Optional[_Union[TrainerStatus, _Mapping]] = ...) -> None: ...

class TrainerSet(_message.Message):
    __slots__ = ("trainers",)
    TRAINERS_FIELD_NUMBER: _ClassVar[int]
    trainers: _containers.RepeatedCompositeFieldContainer[TrainerStatus]
    def __init__(self, trainers: _Optional[_Iterable[_Union[TrainerStatus, _Mapping]]] = ...) -> None: ...
