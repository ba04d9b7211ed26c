"""The NATS layout's setup: the checkpoints bucket made idempotently, its cap and the events'
age from the env."""

from __future__ import annotations

import asyncio

import pytest

from tests.support.servers import Nats
from tuner.core import streams
from tuner.core.env import ConfigError

BUCKET_STREAM = f"OBJ_{streams.CHECKPOINTS_BUCKET}"


async def test_the_checkpoints_bucket_is_made_once_whoever_asks_and_however_often(
    nats: Nats,
) -> None:
    policy = streams.QueuePolicy()
    # A scheduler and a trainer starting together, then one of them restarting.
    await asyncio.gather(
        streams.ensure_streams(nats.js, policy), streams.ensure_streams(nats.js, policy)
    )
    await streams.ensure_streams(nats.js, policy)
    bucket = await nats.js.object_store(streams.CHECKPOINTS_BUCKET)
    await bucket.put("runs/x/cpu/epoch-0001", b"kept")

    info = await nats.js.stream_info(BUCKET_STREAM)
    assert info.config.max_bytes == 4 << 30 == streams.CHECKPOINTS_MAX_BYTES
    assert info.config.num_replicas == 1

    # Another cap is applied to the bucket there is, and what it holds stays.
    await streams.ensure_streams(nats.js, streams.QueuePolicy(checkpoints_max_bytes=1 << 30))
    info = await nats.js.stream_info(BUCKET_STREAM)
    assert info.config.max_bytes == 1 << 30
    assert (await bucket.get("runs/x/cpu/epoch-0001")).data == b"kept"
    await streams.ensure_streams(nats.js, policy)


def test_the_cap_is_read_from_the_environment() -> None:
    assert streams.QueuePolicy.from_env({}).checkpoints_max_bytes == 4 << 30
    policy = streams.QueuePolicy.from_env({"TUNER_CHECKPOINTS_MAX_BYTES": "1073741824"})
    assert policy.checkpoints_max_bytes == 1 << 30
    with pytest.raises(ConfigError, match="TUNER_CHECKPOINTS_MAX_BYTES: expected a whole number"):
        streams.QueuePolicy.from_env({"TUNER_CHECKPOINTS_MAX_BYTES": "4G"})
    with pytest.raises(ConfigError, match="TUNER_CHECKPOINTS_MAX_BYTES: must be 1048576 or more"):
        streams.QueuePolicy.from_env({"TUNER_CHECKPOINTS_MAX_BYTES": "4096"})


async def test_the_events_stream_keeps_events_as_long_as_the_environment_says(
    nats: Nats,
) -> None:
    assert streams.QueuePolicy.from_env({}).events_max_age_seconds == 7 * 86400
    policy = streams.QueuePolicy.from_env({"TUNER_EVENTS_MAX_AGE_SECONDS": "3600"})
    await streams.ensure_streams(nats.js, policy)
    info = await nats.js.stream_info(streams.EVENTS_STREAM)
    assert info.config.max_age == 3600
    await streams.ensure_streams(nats.js, streams.QueuePolicy())
    assert (await nats.js.stream_info(streams.EVENTS_STREAM)).config.max_age == 7 * 86400
    with pytest.raises(ConfigError, match="TUNER_EVENTS_MAX_AGE_SECONDS: must be a positive"):
        streams.QueuePolicy.from_env({"TUNER_EVENTS_MAX_AGE_SECONDS": "0"})
