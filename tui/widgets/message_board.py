"""The last events, newest first, each with the time it happened."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Label

KINDS = ("submitted", "exists", "started", "requeued", "succeeded", "failed", "cancelled")


class BoardEntry(Label):
    def __init__(self, time: str, kind: str, text: str) -> None:
        super().__init__(f"{time} {text}", classes=f"-{kind}", markup=False)
        self.kind = kind
        self.text = text


class MessageBoard(Vertical):
    """Keeps `limit` entries; the colour of each comes from its kind's CSS class."""

    DEFAULT_CSS = """
    MessageBoard {
        height: auto;
    }
    MessageBoard > Label {
        padding: 0 1;
        text-wrap: nowrap;
        text-overflow: ellipsis;
    }
    MessageBoard > .empty { display: none; }
    MessageBoard.-empty > .empty { display: block; }
    """

    def __init__(self, limit: int = 10, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.limit = limit

    def compose(self) -> ComposeResult:
        yield Label("Nothing has happened yet.", classes="empty")

    def on_mount(self) -> None:
        self.add_class("-empty")

    @property
    def entries(self) -> list[BoardEntry]:
        """Newest first."""
        return list(self.query_children(BoardEntry))

    def add(self, time: str, kind: str, text: str) -> None:
        if kind not in KINDS:
            raise ValueError(kind)
        entries = self.entries
        entry = BoardEntry(time, kind, text)
        if entries:
            self.mount(entry, before=entries[0])
        else:
            self.mount(entry)
        for old in entries[self.limit - 1 :]:
            old.remove()
        self.remove_class("-empty")
