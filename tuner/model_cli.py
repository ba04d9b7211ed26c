"""`tuner model get`: download a SUCCEEDED job's final model to a file."""

from __future__ import annotations

import argparse

from tuner.client import TunerClient
from tuner.models import FORMATS, save, target

FORMAT_HELP = """formats:
  state-dict  the weights (JOB_ID.pt): torch.load(FILE) gives the model's state_dict, with
              the parameter names of the model definitions in trainer/models.py
  exported    a torch.export program (JOB_ID.pt2): torch.export.load(FILE).module() takes
              float images in [0, 1] of shape (N, 1, 28, 28), applies the dataset's
              normalization itself and gives log-probabilities of the 10 classes

The file's size and SHA-256 are checked against what the scheduler announced before it is
kept; on any error no file is left."""


def add_parser(
    commands: argparse._SubParsersAction[argparse.ArgumentParser],
    parents: list[argparse.ArgumentParser],
) -> None:
    model = commands.add_parser("model", help="download a SUCCEEDED job's final model")
    actions = model.add_subparsers(dest="model_command", required=True, metavar="ACTION")
    p = actions.add_parser(
        "get",
        parents=parents,
        help="save a SUCCEEDED job's final model to a file",
        description="Save a SUCCEEDED job's final model to a file.",
        epilog=FORMAT_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("job_id")
    p.add_argument(
        "-o",
        "--output",
        metavar="FILE",
        help="where to write it (default: JOB_ID.pt, or JOB_ID.pt2 exported, in the current "
        "folder; a folder puts that file there)",
    )
    p.add_argument(
        "--format", choices=FORMATS, default="state-dict", help="default: %(default)s (see below)"
    )


async def get(client: TunerClient, args: argparse.Namespace) -> int:
    path = target(args.output, args.job_id, args.format)
    header = await save(client.model(args.job_id, FORMATS[args.format].value), path)
    print(f"saved the {args.format} model of job {header.job_id} to {path} ({header.size} bytes)")
    return 0


COMMANDS = {"get": get}
