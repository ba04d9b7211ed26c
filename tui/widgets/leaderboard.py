"""The best finished jobs by test accuracy; the top three rows carry gold, silver, bronze."""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Label, ListItem, ListView

from tui import formatting
from tui.messages import OpenJob
from tuner.v1 import job_pb2

MEDALS = ("gold", "silver", "bronze")
SHORT_DATASETS = {"fashion-mnist": "fashion"}


def columns(
    rank: str,
    accuracy: str,
    epochs: str,
    lr: str,
    batch: str,
    model: str,
    dataset: str,
    optimizer: str,
    training: str,
    owner: str,
) -> str:
    return (
        f"{rank:>3} {accuracy:>7} {epochs:>3} {lr:>7} {batch:>5} {model:<5} "
        f"{dataset:<7} {optimizer:<8} {training:>7} {owner}"
    )


HEADER = columns("#", "acc", "ep", "lr", "batch", "model", "data", "optim", "train", "owner")


def line(rank: int, job: job_pb2.Job) -> str:
    hp = job.hyperparameters
    data = formatting.dataset(hp)
    return columns(
        str(rank),
        formatting.percent(job.result.test_accuracy),
        str(hp.epochs),
        f"{hp.learning_rate:g}",
        str(hp.batch_size),
        formatting.model(hp),
        SHORT_DATASETS.get(data, data),
        formatting.optimizer(hp),
        formatting.span(formatting.seconds(job.result.training_duration)),
        job.owner,
    )


class LeaderboardRow(ListItem):
    def __init__(self, rank: int, job: job_pb2.Job) -> None:
        medal = MEDALS[rank - 1] if rank <= len(MEDALS) else None
        super().__init__(Label(line(rank, job), markup=False), classes=medal)
        self.rank = rank
        self.job = job


class Leaderboard(Vertical):
    """Shows what `show` is given, ranked from 1."""

    DEFAULT_CSS = """
    Leaderboard {
        height: auto;
    }
    Leaderboard > ListView {
        height: auto;
    }
    Leaderboard .columns, LeaderboardRow > Label {
        padding: 0 1;
        text-wrap: nowrap;
        text-overflow: ellipsis;
    }
    Leaderboard > .empty { display: none; padding: 0 1; }
    Leaderboard.-empty > .empty { display: block; }
    Leaderboard.-empty > ListView, Leaderboard.-empty > .columns { display: none; }
    """

    def compose(self) -> ComposeResult:
        yield Label(HEADER, classes="columns", markup=False)
        yield ListView()
        yield Label("No finished jobs yet.", classes="empty")

    def on_mount(self) -> None:
        self.add_class("-empty")

    @property
    def jobs(self) -> list[job_pb2.Job]:
        return [row.job for row in self.query(LeaderboardRow)]

    async def show(self, jobs: list[job_pb2.Job]) -> None:
        listing = self.query_one(ListView)
        index = listing.index
        await listing.clear()
        await listing.extend(LeaderboardRow(rank, job) for rank, job in enumerate(jobs, 1))
        if jobs:
            listing.index = min(index or 0, len(jobs) - 1)
        self.set_class(not jobs, "-empty")

    @on(ListView.Selected)
    def _selected(self, event: ListView.Selected) -> None:
        event.stop()
        if isinstance(event.item, LeaderboardRow):
            self.post_message(OpenJob(event.item.job))
