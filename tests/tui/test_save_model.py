"""The job detail's "Save model" key, driven by Pilot, downloading over real gRPC from the
scheduler's TunerService in process (a real JobStore and nats-server behind it)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot
from textual.widgets import Input

from store.documents import job_from
from store.jobs import JobStore
from tests.support.dashboard import offline_app, type_into, until
from tests.support.hyperparameters import mlp
from tests.support.models import fresh_bucket, model_bytes, serving, stored_job
from tests.support.servers import Nats, fresh_streams
from tui.app import TunerApp
from tui.screens.detail import JobDetailScreen
from tui.screens.save_model import SaveModelScreen
from tuner.client import TunerClient
from tuner.core import states, streams

DATA = model_bytes(150_000)


@pytest.fixture
async def store(mongo_uri: str) -> AsyncIterator[JobStore]:
    s = JobStore.connect(mongo_uri, f"test_{uuid.uuid4().hex[:12]}")
    await s.ensure_indexes()
    try:
        yield s
    finally:
        await s.close()


@pytest.fixture
async def nats(nats_url: str) -> AsyncIterator[Nats]:
    nc = await streams.connect(nats_url, "tui-test")
    try:
        await fresh_streams(nc.jetstream(), streams.QueuePolicy())
        yield Nats(nc, nc.jetstream())
    finally:
        await nc.close()


def toasts(app: TunerApp) -> list[tuple[str, str, str]]:
    return [(n.title, n.message, n.severity) for n in app._notifications]


async def open_detail(pilot: Pilot[Any], app: TunerApp, doc: dict[str, Any]) -> JobDetailScreen:
    screen = JobDetailScreen(app.client, job_from(doc), app.clock, live=False)
    await app.push_screen(screen)
    await pilot.pause()
    return screen


async def save_to(pilot: Pilot[Any], app: TunerApp, path: str) -> None:
    """Presses m, types `path` over the proposed one, and Enter."""
    await pilot.press("m")
    await until(pilot, lambda: isinstance(app.screen, SaveModelScreen), timeout=5, what="dialog")
    await type_into(pilot, "#save-model-path", path)
    await pilot.press("enter")
    await until(pilot, lambda: bool(app._notifications), timeout=10, what="a toast")


async def test_m_saves_the_model_where_the_dialog_says(
    store: JobStore, nats: Nats, tmp_path: Path
) -> None:
    doc = await stored_job(store, mlp(9601), owner="bob")
    bucket = await fresh_bucket(nats.js)
    await bucket.put(streams.model_object(doc["_id"], "state-dict"), DATA)
    async with serving(store, nats) as address, TunerClient(address, "alice") as client:
        app = offline_app(client)
        async with app.run_test(size=(100, 30)) as pilot:
            screen = await open_detail(pilot, app, doc)
            assert screen.check_action("save_model", ())
            assert "Save this job's model" in [c.title for c in app.get_system_commands(app.screen)]
            await pilot.press("m")
            await until(pilot, lambda: isinstance(app.screen, SaveModelScreen), timeout=5)
            proposed = app.screen.query_one("#save-model-path", Input).value
            assert proposed == f"{doc['_id']}.pt", "JOB_ID.pt in the current folder"
            await pilot.press("escape")
            await pilot.pause()
            assert app.screen is screen and not app._notifications, "Escape saves nothing"

            await save_to(pilot, app, str(tmp_path))  # a folder: JOB_ID.pt in it

            saved = tmp_path / f"{doc['_id']}.pt"
            assert toasts(app) == [("Model saved", f"{saved} (150,000 bytes)", "information")]
            assert saved.read_bytes() == DATA
            assert app.screen is screen


async def test_why_a_model_was_not_saved_is_a_toast(
    store: JobStore, nats: Nats, tmp_path: Path
) -> None:
    doc = await stored_job(store, mlp(9602))
    await store.set_model_deleted(doc["_id"], doc["end_time"])
    await fresh_bucket(nats.js)
    writable = await stored_job(store, mlp(9603))
    await (await fresh_bucket(nats.js)).put(
        streams.model_object(writable["_id"], "state-dict"), DATA
    )
    (tmp_path / "a-file").write_text("")
    async with serving(store, nats) as address, TunerClient(address, "alice") as client:
        app = offline_app(client)
        async with app.run_test(size=(100, 30)) as pilot:
            await open_detail(pilot, app, doc)
            await save_to(pilot, app, str(tmp_path))
            (title, message, severity) = toasts(app)[0]
            assert (title, severity) == ("Model not saved", "error")
            assert message.startswith(f"job_id: the model of job {doc['_id']} has expired (kept:")

            app.clear_notifications()
            await app.pop_screen()
            await open_detail(pilot, app, writable)
            await save_to(pilot, app, str(tmp_path / "a-file" / "m.pt"))
            assert toasts(app) == [
                (
                    "Model not saved",
                    f"cannot write {tmp_path / 'a-file' / 'm.pt'}: Not a directory",
                    "error",
                )
            ]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a-file"]


async def test_only_a_succeeded_job_offers_its_model(store: JobStore, nats: Nats) -> None:
    running = await stored_job(store, mlp(9604), states.RUNNING)
    async with serving(store, nats) as address, TunerClient(address, "alice") as client:
        app = offline_app(client)
        async with app.run_test(size=(100, 30)) as pilot:
            screen = await open_detail(pilot, app, running)
            assert not screen.check_action("save_model", ())
            titles = [c.title for c in app.get_system_commands(app.screen)]
            assert "Save this job's model" not in titles
            await pilot.press("m")
            await pilot.pause()
            assert app.screen is screen, "no dialog"
