from tuner.v1 import job_pb2 as _job_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Range(_message.Message):
    __slots__ = ("min", "max")
    MIN_FIELD_NUMBER: _ClassVar[int]
    MAX_FIELD_NUMBER: _ClassVar[int]
    min: float
    max: float
    def __init__(self, min: _Optional[float] = ..., max: _Optional[float] = ...) -> None: ...

class JobFilter(_message.Message):
    __slots__ = ("dataset", "model", "optimizer", "epochs", "learning_rate", "batch_size")
    DATASET_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    OPTIMIZER_FIELD_NUMBER: _ClassVar[int]
    EPOCHS_FIELD_NUMBER: _ClassVar[int]
    LEARNING_RATE_FIELD_NUMBER: _ClassVar[int]
    BATCH_SIZE_FIELD_NUMBER: _ClassVar[int]
    dataset: _job_pb2.Dataset
    model: _job_pb2.Model
    optimizer: _job_pb2.Optimizer
    epochs: Range
    learning_rate: Range
    batch_size: Range
    def __init__(self, dataset: _Optional[_Union[_job_pb2.Dataset, str]] = ..., model: _Optional[_Union[_job_pb2.Model, str]] = ..., optimizer: _Optional[_Union[_job_pb2.Optimizer, str]] = ..., epochs: _Optional[_Union[Range, _Mapping]] = ..., learning_rate: _Optional[_Union[Range, _Mapping]] = ..., batch_size: _Optional[_Union[Range, _Mapping]] = ...) -> None: ...

class AnalyzeRequest(_message.Message):
    __slots__ = ("sweep_id", "filter")
    SWEEP_ID_FIELD_NUMBER: _ClassVar[int]
    FILTER_FIELD_NUMBER: _ClassVar[int]
    sweep_id: str
    filter: JobFilter
    def __init__(self, sweep_id: _Optional[str] = ..., filter: _Optional[_Union[JobFilter, _Mapping]] = ...) -> None: ...

class Importance(_message.Message):
    __slots__ = ("name", "value", "defined", "reason")
    NAME_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    DEFINED_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    name: str
    value: float
    defined: bool
    reason: str
    def __init__(self, name: _Optional[str] = ..., value: _Optional[float] = ..., defined: _Optional[bool] = ..., reason: _Optional[str] = ...) -> None: ...

class Point(_message.Message):
    __slots__ = ("job_id", "hyperparameters", "test_accuracy", "trial_number")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    HYPERPARAMETERS_FIELD_NUMBER: _ClassVar[int]
    TEST_ACCURACY_FIELD_NUMBER: _ClassVar[int]
    TRIAL_NUMBER_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    hyperparameters: _job_pb2.Hyperparameters
    test_accuracy: float
    trial_number: int
    def __init__(self, job_id: _Optional[str] = ..., hyperparameters: _Optional[_Union[_job_pb2.Hyperparameters, _Mapping]] = ..., test_accuracy: _Optional[float] = ..., trial_number: _Optional[int] = ...) -> None: ...

class AnalyzeResponse(_message.Message):
    __slots__ = ("count", "truncated", "best_job_id", "best_test_accuracy", "importances", "points", "note")
    COUNT_FIELD_NUMBER: _ClassVar[int]
    TRUNCATED_FIELD_NUMBER: _ClassVar[int]
    BEST_JOB_ID_FIELD_NUMBER: _ClassVar[int]
    BEST_TEST_ACCURACY_FIELD_NUMBER: _ClassVar[int]
    IMPORTANCES_FIELD_NUMBER: _ClassVar[int]
    POINTS_FIELD_NUMBER: _ClassVar[int]
    NOTE_FIELD_NUMBER: _ClassVar[int]
    count: int
    truncated: bool
    best_job_id: str
    best_test_accuracy: float
    importances: _containers.RepeatedCompositeFieldContainer[Importance]
    points: _containers.RepeatedCompositeFieldContainer[Point]
    note: str
    def __init__(self, count: _Optional[int] = ..., truncated: _Optional[bool] = ..., best_job_id: _Optional[str] = ..., best_test_accuracy: _Optional[float] = ..., importances: _Optional[_Iterable[_Union[Importance, _Mapping]]] = ..., points: _Optional[_Iterable[_Union[Point, _Mapping]]] = ..., note: _Optional[str] = ...) -> None: ...
