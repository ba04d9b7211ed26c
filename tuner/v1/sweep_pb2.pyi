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

class SearchStrategy(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SEARCH_STRATEGY_UNSPECIFIED: _ClassVar[SearchStrategy]
    SEARCH_STRATEGY_GRID: _ClassVar[SearchStrategy]
    SEARCH_STRATEGY_RANDOM: _ClassVar[SearchStrategy]
    SEARCH_STRATEGY_TPE: _ClassVar[SearchStrategy]

class EarlyStopping(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    EARLY_STOPPING_UNSPECIFIED: _ClassVar[EarlyStopping]
    EARLY_STOPPING_NONE: _ClassVar[EarlyStopping]
    EARLY_STOPPING_MEDIAN: _ClassVar[EarlyStopping]
    EARLY_STOPPING_ASHA: _ClassVar[EarlyStopping]

class SweepState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SWEEP_STATE_UNSPECIFIED: _ClassVar[SweepState]
    SWEEP_STATE_RUNNING: _ClassVar[SweepState]
    SWEEP_STATE_SUCCEEDED: _ClassVar[SweepState]
    SWEEP_STATE_CANCELLED: _ClassVar[SweepState]
SEARCH_STRATEGY_UNSPECIFIED: SearchStrategy
SEARCH_STRATEGY_GRID: SearchStrategy
SEARCH_STRATEGY_RANDOM: SearchStrategy
SEARCH_STRATEGY_TPE: SearchStrategy
EARLY_STOPPING_UNSPECIFIED: EarlyStopping
EARLY_STOPPING_NONE: EarlyStopping
EARLY_STOPPING_MEDIAN: EarlyStopping
EARLY_STOPPING_ASHA: EarlyStopping
SWEEP_STATE_UNSPECIFIED: SweepState
SWEEP_STATE_RUNNING: SweepState
SWEEP_STATE_SUCCEEDED: SweepState
SWEEP_STATE_CANCELLED: SweepState

class Dimension(_message.Message):
    __slots__ = ("values", "min", "max", "log", "grid_points")
    VALUES_FIELD_NUMBER: _ClassVar[int]
    MIN_FIELD_NUMBER: _ClassVar[int]
    MAX_FIELD_NUMBER: _ClassVar[int]
    LOG_FIELD_NUMBER: _ClassVar[int]
    GRID_POINTS_FIELD_NUMBER: _ClassVar[int]
    values: _containers.RepeatedScalarFieldContainer[float]
    min: float
    max: float
    log: bool
    grid_points: int
    def __init__(self, values: _Optional[_Iterable[float]] = ..., min: _Optional[float] = ..., max: _Optional[float] = ..., log: _Optional[bool] = ..., grid_points: _Optional[int] = ...) -> None: ...

class SearchSpace(_message.Message):
    __slots__ = ("epochs", "learning_rate", "batch_size", "datasets", "models", "optimizers", "seed")
    EPOCHS_FIELD_NUMBER: _ClassVar[int]
    LEARNING_RATE_FIELD_NUMBER: _ClassVar[int]
    BATCH_SIZE_FIELD_NUMBER: _ClassVar[int]
    DATASETS_FIELD_NUMBER: _ClassVar[int]
    MODELS_FIELD_NUMBER: _ClassVar[int]
    OPTIMIZERS_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    epochs: Dimension
    learning_rate: Dimension
    batch_size: Dimension
    datasets: _containers.RepeatedScalarFieldContainer[_job_pb2.Dataset]
    models: _containers.RepeatedScalarFieldContainer[_job_pb2.Model]
    optimizers: _containers.RepeatedScalarFieldContainer[_job_pb2.Optimizer]
    seed: Dimension
    def __init__(self, epochs: _Optional[_Union[Dimension, _Mapping]] = ..., learning_rate: _Optional[_Union[Dimension, _Mapping]] = ..., batch_size: _Optional[_Union[Dimension, _Mapping]] = ..., datasets: _Optional[_Iterable[_Union[_job_pb2.Dataset, str]]] = ..., models: _Optional[_Iterable[_Union[_job_pb2.Model, str]]] = ..., optimizers: _Optional[_Iterable[_Union[_job_pb2.Optimizer, str]]] = ..., seed: _Optional[_Union[Dimension, _Mapping]] = ...) -> None: ...

class SweepSpec(_message.Message):
    __slots__ = ("name", "space", "strategy", "max_trials", "parallelism", "early_stopping", "min_epochs", "reduction_factor", "sampler_seed")
    NAME_FIELD_NUMBER: _ClassVar[int]
    SPACE_FIELD_NUMBER: _ClassVar[int]
    STRATEGY_FIELD_NUMBER: _ClassVar[int]
    MAX_TRIALS_FIELD_NUMBER: _ClassVar[int]
    PARALLELISM_FIELD_NUMBER: _ClassVar[int]
    EARLY_STOPPING_FIELD_NUMBER: _ClassVar[int]
    MIN_EPOCHS_FIELD_NUMBER: _ClassVar[int]
    REDUCTION_FACTOR_FIELD_NUMBER: _ClassVar[int]
    SAMPLER_SEED_FIELD_NUMBER: _ClassVar[int]
    name: str
    space: SearchSpace
    strategy: SearchStrategy
    max_trials: int
    parallelism: int
    early_stopping: EarlyStopping
    min_epochs: int
    reduction_factor: int
    sampler_seed: int
    def __init__(self, name: _Optional[str] = ..., space: _Optional[_Union[SearchSpace, _Mapping]] = ..., strategy: _Optional[_Union[SearchStrategy, str]] = ..., max_trials: _Optional[int] = ..., parallelism: _Optional[int] = ..., early_stopping: _Optional[_Union[EarlyStopping, str]] = ..., min_epochs: _Optional[int] = ..., reduction_factor: _Optional[int] = ..., sampler_seed: _Optional[int] = ...) -> None: ...

class Trial(_message.Message):
    __slots__ = ("number", "job_id", "hyperparameters", "state", "test_accuracy", "epochs_done", "pruned", "reused")
    NUMBER_FIELD_NUMBER: _ClassVar[int]
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    HYPERPARAMETERS_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    TEST_ACCURACY_FIELD_NUMBER: _ClassVar[int]
    EPOCHS_DONE_FIELD_NUMBER: _ClassVar[int]
    PRUNED_FIELD_NUMBER: _ClassVar[int]
    REUSED_FIELD_NUMBER: _ClassVar[int]
    number: int
    job_id: str
    hyperparameters: _job_pb2.Hyperparameters
    state: _job_pb2.JobState
    test_accuracy: float
    epochs_done: int
    pruned: bool
    reused: bool
    def __init__(self, number: _Optional[int] = ..., job_id: _Optional[str] = ..., hyperparameters: _Optional[_Union[_job_pb2.Hyperparameters, _Mapping]] = ..., state: _Optional[_Union[_job_pb2.JobState, str]] = ..., test_accuracy: _Optional[float] = ..., epochs_done: _Optional[int] = ..., pruned: _Optional[bool] = ..., reused: _Optional[bool] = ...) -> None: ...

class Sweep(_message.Message):
    __slots__ = ("id", "spec", "state", "owner", "trials", "best_trial", "create_time", "end_time", "update_time")
    ID_FIELD_NUMBER: _ClassVar[int]
    SPEC_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    OWNER_FIELD_NUMBER: _ClassVar[int]
    TRIALS_FIELD_NUMBER: _ClassVar[int]
    BEST_TRIAL_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    UPDATE_TIME_FIELD_NUMBER: _ClassVar[int]
    id: str
    spec: SweepSpec
    state: SweepState
    owner: str
    trials: _containers.RepeatedCompositeFieldContainer[Trial]
    best_trial: int
    create_time: _timestamp_pb2.Timestamp
    end_time: _timestamp_pb2.Timestamp
    update_time: _timestamp_pb2.Timestamp
    def __init__(self, id: _Optional[str] = ..., spec: _Optional[_Union[SweepSpec, _Mapping]] = ..., state: _Optional[_Union[SweepState, str]] = ..., owner: _Optional[str] = ..., trials: _Optional[_Iterable[_Union[Trial, _Mapping]]] = ..., best_trial: _Optional[int] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., update_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class SweepChanged(_message.Message):
    __slots__ = ("sequence", "sweep", "version")
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    SWEEP_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    sequence: int
    sweep: Sweep
    version: int
    def __init__(self, sequence: _Optional[int] = ..., sweep: _Optional[_Union[Sweep, _Mapping]] = ..., version: _Optional[int] = ...) -> None: ...

class CreateSweepRequest(_message.Message):
    __slots__ = ("spec",)
    SPEC_FIELD_NUMBER: _ClassVar[int]
    spec: SweepSpec
    def __init__(self, spec: _Optional[_Union[SweepSpec, _Mapping]] = ...) -> None: ...

class CreateSweepResponse(_message.Message):
    __slots__ = ("sweep",)
    SWEEP_FIELD_NUMBER: _ClassVar[int]
    sweep: Sweep
    def __init__(self, sweep: _Optional[_Union[Sweep, _Mapping]] = ...) -> None: ...

class GetSweepRequest(_message.Message):
    __slots__ = ("sweep_id",)
    SWEEP_ID_FIELD_NUMBER: _ClassVar[int]
    sweep_id: str
    def __init__(self, sweep_id: _Optional[str] = ...) -> None: ...

class GetSweepResponse(_message.Message):
    __slots__ = ("sweep",)
    SWEEP_FIELD_NUMBER: _ClassVar[int]
    sweep: Sweep
    def __init__(self, sweep: _Optional[_Union[Sweep, _Mapping]] = ...) -> None: ...

class ListSweepsRequest(_message.Message):
    __slots__ = ("page_size",)
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    def __init__(self, page_size: _Optional[int] = ...) -> None: ...

class ListSweepsResponse(_message.Message):
    __slots__ = ("sweeps",)
    SWEEPS_FIELD_NUMBER: _ClassVar[int]
    sweeps: _containers.RepeatedCompositeFieldContainer[Sweep]
    def __init__(self, sweeps: _Optional[_Iterable[_Union[Sweep, _Mapping]]] = ...) -> None: ...

class CancelSweepRequest(_message.Message):
    __slots__ = ("sweep_id",)
    SWEEP_ID_FIELD_NUMBER: _ClassVar[int]
    sweep_id: str
    def __init__(self, sweep_id: _Optional[str] = ...) -> None: ...

class CancelSweepResponse(_message.Message):
    __slots__ = ("sweep",)
    SWEEP_FIELD_NUMBER: _ClassVar[int]
    sweep: Sweep
    def __init__(self, sweep: _Optional[_Union[Sweep, _Mapping]] = ...) -> None: ...

class WatchSweepRequest(_message.Message):
    __slots__ = ("sweep_id",)
    SWEEP_ID_FIELD_NUMBER: _ClassVar[int]
    sweep_id: str
    def __init__(self, sweep_id: _Optional[str] = ...) -> None: ...

class WatchSweepResponse(_message.Message):
    __slots__ = ("sweep",)
    SWEEP_FIELD_NUMBER: _ClassVar[int]
    sweep: Sweep
    def __init__(self, sweep: _Optional[_Union[Sweep, _Mapping]] = ...) -> None: ...
