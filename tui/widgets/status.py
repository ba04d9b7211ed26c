"""One line at the top: who is connected to which scheduler, and whether it answers."""

from __future__ import annotations

from textual.widgets import Static


class ConnectionStatus(Static):
    """Its CSS class (-connecting, -online, -offline) gives its colour."""

    DEFAULT_CSS = """
    ConnectionStatus {
        height: 1;
        padding: 0 1;
        text-wrap: nowrap;
        text-overflow: ellipsis;
    }
    """

    def __init__(self, server: str, user: str) -> None:
        super().__init__(markup=False)
        self._where = f"tuner · {user} @ {server}"
        self.connecting()

    def _state(self, state: str, text: str) -> None:
        for name in ("-connecting", "-online", "-offline"):
            self.set_class(name == state, name)
        self.update(f"{self._where} · {text}")

    def connecting(self) -> None:
        self._state("-connecting", "connecting…")

    def online(self) -> None:
        self._state("-online", "connected")

    def offline(self, reason: str, retry_in: float) -> None:
        self._state(
            "-offline",
            f"connection lost ({reason}) · retrying in {retry_in:g}s · showing what it last knew",
        )

    @property
    def is_online(self) -> bool:
        return self.has_class("-online")
