"""A small dialog: where to save a job's model (a file, or a folder to put JOB_ID.pt in)."""

from __future__ import annotations

from typing import ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Label


class SaveModelScreen(ModalScreen[str | None]):
    """Answers the path typed (Enter), or None (Escape)."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, job_id: str, default: str) -> None:
        super().__init__()
        self._job_id = job_id
        self._default = default

    def compose(self) -> ComposeResult:
        with Vertical(id="save-model"):
            yield Label(f"Save the model of job {self._job_id} (state dict) to:", markup=False)
            yield Input(self._default, id="save-model-path")
            yield Label("A file, or a folder. Enter saves, Escape cancels.", classes="field-label")

    def on_mount(self) -> None:
        self.query_one("#save-model").border_title = "Save model"

    @on(Input.Submitted, "#save-model-path")
    def _submitted(self, event: Input.Submitted) -> None:
        self.dismiss(event.value.strip() or self._default)

    def action_cancel(self) -> None:
        self.dismiss(None)
