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
        self._text = ""
        self._notice = ""
        self._trainers = ""
        self.connecting()

    def _state(self, state: str, text: str) -> None:
        for name in ("-connecting", "-online", "-offline"):
            self.set_class(name == state, name)
        self._text = text
        self._show()

    def _show(self) -> None:
        notice = f" · {self._notice}" if self._notice else ""
        trainers = f" · {self._trainers}" if self._trainers and self.is_online else ""
        self.update(f"{self._where} · {self._text}{trainers}{notice}")

    def trainers(self, count: int, warming_up: int = 0) -> None:
        """How many trainers the scheduler hears from, and how many of them warm up still."""
        if count == 0:
            self._trainers = "no trainer connected"
        elif warming_up:
            self._trainers = f"trainers {count} ({warming_up} warming up)"
        else:
            self._trainers = f"trainers {count} ready"
        self.set_class(count == 0, "-no-trainers")
        self._show()

    def notice(self, text: str) -> None:
        """The stack's latest notice (a restart `tuner up` made), after the connection's state."""
        self._notice = text
        self._show()

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
