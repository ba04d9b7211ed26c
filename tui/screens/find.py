"""Look a job up by its hyperparameters; Enter on the answer opens it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import grpc
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Button, Footer, Static

from tui import formatting
from tui.messages import OpenJob, RequestFailed
from tui.widgets.form import HyperparameterForm
from tuner.client import TunerClient
from tuner.v1 import job_pb2


@dataclass
class Found(Message):
    job: job_pb2.Job


class FindScreen(Screen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "app.pop_screen", "Back")]

    def __init__(self, client: TunerClient) -> None:
        super().__init__()
        self._client = client
        self.found: job_pb2.Job | None = None

    def compose(self) -> ComposeResult:
        yield HyperparameterForm("Find", id="find-form")
        with Vertical(id="find-result"):
            yield Static("Fill in the hyperparameters and press Enter.", id="find-answer")
            yield Button("Open", id="open", disabled=True, compact=True)
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#find-form").border_title = "Find a job by its hyperparameters"
        self.query_one("#find-result").border_title = "Answer"
        self.query_one("#epochs").focus()

    @work(exclusive=True, group="find")
    async def find(self, hp: job_pb2.Hyperparameters) -> None:
        form = self.query_one(HyperparameterForm)
        form.pending = True
        try:
            self.post_message(Found(await self._client.find(hp)))
        except grpc.aio.AioRpcError as error:
            self.post_message(RequestFailed.of("find", error))
        finally:
            form.pending = False

    @on(HyperparameterForm.Submitted)
    def _submitted(self, message: HyperparameterForm.Submitted) -> None:
        self.find(message.hyperparameters)

    @on(Found)
    def _found(self, message: Found) -> None:
        job = message.job
        self.found = job
        self.query_one("#find-answer", Static).update(
            f"{job.id} · {formatting.full(job.hyperparameters)}\n"
            f"{formatting.outcome(job)} · owner {job.owner}"
        )
        button = self.query_one("#open", Button)
        button.disabled = False
        button.focus()

    @on(RequestFailed)
    def _failed(self, message: RequestFailed) -> None:
        self.found = None
        self.query_one("#open", Button).disabled = True
        answer = self.query_one("#find-answer", Static)
        if message.code == "NOT_FOUND":
            answer.update("No job has these hyperparameters.")
        elif message.code == "INVALID_ARGUMENT":
            answer.update("")
            self.query_one(HyperparameterForm).show_server_error(message.details)
        else:
            answer.update(f"{message.code}: {message.details}")

    @on(Button.Pressed, "#open")
    def _open(self, event: Button.Pressed) -> None:
        event.stop()
        if self.found is not None:
            self.post_message(OpenJob(self.found))
