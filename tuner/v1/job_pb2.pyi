import datetime

from google.protobuf import duration_pb2 as _duration_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Dataset(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    DATASET_UNSPECIFIED: _ClassVar[Dataset]
    DATASET_MNIST: _ClassVar[Dataset]
    DATASET_FASHION_MNIST: _ClassVar[Dataset]

class Model(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    MODEL_UNSPECIFIED: _ClassVar[Model]
    MODEL_CNN: _ClassVar[Model]
    MODEL_MLP: _ClassVar[Model]

class Optimizer(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    OPTIMIZER_UNSPECIFIED: _ClassVar[Optimizer]
    OPTIMIZER_SGD: _ClassVar[Optimizer]
    OPTIMIZER_ADAM: _ClassVar[Optimizer]
    OPTIMIZER_ADADELTA: _ClassVar[Optimizer]

class JobState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    JOB_STATE_UNSPECIFIED: _ClassVar[JobState]
    JOB_STATE_QUEUED: _ClassVar[JobState]
    JOB_STATE_RUNNING: _ClassVar[JobState]
    JOB_STATE_SUCCEEDED: _ClassVar[JobState]
    JOB_STATE_FAILED: _ClassVar[JobState]
    JOB_STATE_CANCELLED: _ClassVar[JobState]

class ModelFormat(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    MODEL_FORMAT_UNSPECIFIED: _ClassVar[ModelFormat]
    MODEL_FORMAT_STATE_DICT: _ClassVar[ModelFormat]
    MODEL_FORMAT_EXPORTED: _ClassVar[ModelFormat]
DATASET_UNSPECIFIED: Dataset
DATASET_MNIST: Dataset
DATASET_FASHION_MNIST: Dataset
MODEL_UNSPECIFIED: Model
MODEL_CNN: Model
MODEL_MLP: Model
OPTIMIZER_UNSPECIFIED: Optimizer
OPTIMIZER_SGD: Optimizer
OPTIMIZER_ADAM: Optimizer
OPTIMIZER_ADADELTA: Optimizer
JOB_STATE_UNSPECIFIED: JobState
JOB_STATE_QUEUED: JobState
JOB_STATE_RUNNING: JobState
JOB_STATE_SUCCEEDED: JobState
JOB_STATE_FAILED: JobState
JOB_STATE_CANCELLED: JobState
MODEL_FORMAT_UNSPECIFIED: ModelFormat
MODEL_FORMAT_STATE_DICT: ModelFormat
MODEL_FORMAT_EXPORTED: ModelFormat

class Hyperparameters(_message.Message):
    __slots__ = ("epochs", "learning_rate", "batch_size", "dataset", "model", "optimizer", "seed")
    EPOCHS_FIELD_NUMBER: _ClassVar[int]
    LEARNING_RATE_FIELD_NUMBER: _ClassVar[int]
    BATCH_SIZE_FIELD_NUMBER: _ClassVar[int]
    DATASET_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    OPTIMIZER_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    epochs: int
    learning_rate: float
    batch_size: int
    dataset: Dataset
    model: Model
    optimizer: Optimizer
    seed: int
    def __init__(self, epochs: _Optional[int] = ..., learning_rate: _Optional[float] = ..., batch_size: _Optional[int] = ..., dataset: _Optional[_Union[Dataset, str]] = ..., model: _Optional[_Union[Model, str]] = ..., optimizer: _Optional[_Union[Optimizer, str]] = ..., seed: _Optional[int] = ...) -> None: ...

class Progress(_message.Message):
    __slots__ = ("epoch", "total_epochs", "step", "total_steps", "loss")
    EPOCH_FIELD_NUMBER: _ClassVar[int]
    TOTAL_EPOCHS_FIELD_NUMBER: _ClassVar[int]
    STEP_FIELD_NUMBER: _ClassVar[int]
    TOTAL_STEPS_FIELD_NUMBER: _ClassVar[int]
    LOSS_FIELD_NUMBER: _ClassVar[int]
    epoch: int
    total_epochs: int
    step: int
    total_steps: int
    loss: float
    def __init__(self, epoch: _Optional[int] = ..., total_epochs: _Optional[int] = ..., step: _Optional[int] = ..., total_steps: _Optional[int] = ..., loss: _Optional[float] = ...) -> None: ...

class EpochMetrics(_message.Message):
    __slots__ = ("epoch", "train_loss", "test_loss", "test_accuracy", "training_duration", "evaluation_duration", "attempt", "reused")
    EPOCH_FIELD_NUMBER: _ClassVar[int]
    TRAIN_LOSS_FIELD_NUMBER: _ClassVar[int]
    TEST_LOSS_FIELD_NUMBER: _ClassVar[int]
    TEST_ACCURACY_FIELD_NUMBER: _ClassVar[int]
    TRAINING_DURATION_FIELD_NUMBER: _ClassVar[int]
    EVALUATION_DURATION_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    REUSED_FIELD_NUMBER: _ClassVar[int]
    epoch: int
    train_loss: float
    test_loss: float
    test_accuracy: float
    training_duration: _duration_pb2.Duration
    evaluation_duration: _duration_pb2.Duration
    attempt: int
    reused: bool
    def __init__(self, epoch: _Optional[int] = ..., train_loss: _Optional[float] = ..., test_loss: _Optional[float] = ..., test_accuracy: _Optional[float] = ..., training_duration: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., evaluation_duration: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., attempt: _Optional[int] = ..., reused: _Optional[bool] = ...) -> None: ...

class Result(_message.Message):
    __slots__ = ("test_accuracy", "test_loss", "training_duration", "evaluation_duration", "device")
    TEST_ACCURACY_FIELD_NUMBER: _ClassVar[int]
    TEST_LOSS_FIELD_NUMBER: _ClassVar[int]
    TRAINING_DURATION_FIELD_NUMBER: _ClassVar[int]
    EVALUATION_DURATION_FIELD_NUMBER: _ClassVar[int]
    DEVICE_FIELD_NUMBER: _ClassVar[int]
    test_accuracy: float
    test_loss: float
    training_duration: _duration_pb2.Duration
    evaluation_duration: _duration_pb2.Duration
    device: str
    def __init__(self, test_accuracy: _Optional[float] = ..., test_loss: _Optional[float] = ..., training_duration: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., evaluation_duration: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., device: _Optional[str] = ...) -> None: ...

class Job(_message.Message):
    __slots__ = ("id", "hyperparameters", "state", "owner", "progress", "history", "result", "attempts", "error", "create_time", "start_time", "end_time", "update_time", "run", "trainer", "reused_epochs")
    ID_FIELD_NUMBER: _ClassVar[int]
    HYPERPARAMETERS_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    OWNER_FIELD_NUMBER: _ClassVar[int]
    PROGRESS_FIELD_NUMBER: _ClassVar[int]
    HISTORY_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    ATTEMPTS_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    UPDATE_TIME_FIELD_NUMBER: _ClassVar[int]
    RUN_FIELD_NUMBER: _ClassVar[int]
    TRAINER_FIELD_NUMBER: _ClassVar[int]
    REUSED_EPOCHS_FIELD_NUMBER: _ClassVar[int]
    id: str
    hyperparameters: Hyperparameters
    state: JobState
    owner: str
    progress: Progress
    history: _containers.RepeatedCompositeFieldContainer[EpochMetrics]
    result: Result
    attempts: int
    error: str
    create_time: _timestamp_pb2.Timestamp
    start_time: _timestamp_pb2.Timestamp
    end_time: _timestamp_pb2.Timestamp
    update_time: _timestamp_pb2.Timestamp
    run: int
    trainer: str
    reused_epochs: int
    def __init__(self, id: _Optional[str] = ..., hyperparameters: _Optional[_Union[Hyperparameters, _Mapping]] = ..., state: _Optional[_Union[JobState, str]] = ..., owner: _Optional[str] = ..., progress: _Optional[_Union[Progress, _Mapping]] = ..., history: _Optional[_Iterable[_Union[EpochMetrics, _Mapping]]] = ..., result: _Optional[_Union[Result, _Mapping]] = ..., attempts: _Optional[int] = ..., error: _Optional[str] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., update_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., run: _Optional[int] = ..., trainer: _Optional[str] = ..., reused_epochs: _Optional[int] = ...) -> None: ...
