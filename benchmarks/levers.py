"""`--levers`: each torch lever on its own, on the models' training step and evaluation.

Every variant runs in its own process (`python -m benchmarks.levers MODEL [options]`): a few
dozen steps of batch 64 on real MNIST, then an evaluation pass, timed by wall clock and by
the process's CPU time (which moves less when other work shares the machine).
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

from benchmarks.baselines.classic_trial import classic_network
from benchmarks.common import Json, Section, data_root, load_average, run_worker
from benchmarks.trainer_vs_classic import MODELS

CLASSIC = ["--threads", "2", "--classic-model", "--eval-chunk", "1000"]
KEPT = ["--channels-last", "--fused"]
# (name, model, options): each lever moved alone from the classic setup, then what we keep.
VARIANTS: list[tuple[str, str, list[str]]] = [
    ("cnn: classic (2 threads, NCHW, Adam foreach, eval by 1000)", "cnn", CLASSIC),
    ("cnn: + 1 thread", "cnn", [*CLASSIC, "--threads", "1"]),
    ("cnn: + OMP_WAIT_POLICY=PASSIVE", "cnn", [*CLASSIC, "--passive"]),
    ("cnn: + channels_last", "cnn", [*CLASSIC, "--channels-last"]),
    ("cnn: + ReLU after the max-pool", "cnn", [*CLASSIC, "--relu-after-pool"]),
    ("cnn: + dropout mask from torch.rand", "cnn", [*CLASSIC, "--rand-dropout"]),
    ("cnn: + fused Adam", "cnn", [*CLASSIC, "--fused"]),
    ("cnn: + eval by 128", "cnn", [*CLASSIC, "--eval-chunk", "128"]),
    ("cnn: trainer (all kept, 2 threads)", "cnn", [*KEPT, "--threads", "2"]),
    ("cnn: trainer, 1 thread", "cnn", [*KEPT, "--threads", "1"]),
    ("cnn: trainer, 2 threads, PASSIVE", "cnn", [*KEPT, "--threads", "2", "--passive"]),
    ("cnn: trainer + torch.compile", "cnn", [*KEPT, "--threads", "2", "--compile"]),
    ("mlp: classic (2 threads, Adam foreach)", "mlp", ["--threads", "2"]),
    ("mlp: + 1 thread", "mlp", ["--threads", "1"]),
    ("mlp: + fused Adam", "mlp", ["--threads", "2", "--fused"]),
    ("mlp: + OMP_WAIT_POLICY=PASSIVE", "mlp", ["--threads", "2", "--passive"]),
    ("mlp: trainer (1 thread, fused Adam)", "mlp", ["--threads", "1", "--fused"]),
]


def measure(model: str, args: argparse.Namespace, root: Path) -> Json:
    import torch
    from torch.nn import functional

    from trainer import data, models

    torch.set_num_threads(args.threads)
    dataset = data.load(1, root, torch.device("cpu"))
    torch.manual_seed(1)
    network = classic_network(model) if args.classic_model else models.build(MODELS[model])
    if args.classic_model and args.relu_after_pool:
        layers = list(network.children())
        layers[3], layers[4] = layers[4], layers[3]
        network = torch.nn.Sequential(*layers)
    if args.classic_model and args.rand_dropout:
        network = torch.nn.Sequential(
            *(
                models.Dropout(m.p) if isinstance(m, torch.nn.Dropout) else m
                for m in network.children()
            )
        )
    if args.channels_last:
        network = network.to(memory_format=torch.channels_last)
    optimizer = torch.optim.Adam(network.parameters(), lr=1e-3, fused=args.fused or None)
    forward = torch.compile(network) if args.compile else network
    steps = args.steps or (40 if model == "cnn" else 600)
    images, labels = dataset.train.images, dataset.train.labels

    def step(i: int) -> None:
        batch = slice(i * 64, i * 64 + 64)
        optimizer.zero_grad(set_to_none=True)
        torch.autograd.backward(functional.nll_loss(forward(images[batch]), labels[batch]))
        optimizer.step()

    started = time.perf_counter()
    for i in range(3):
        step(i)
    warm_up = time.perf_counter() - started
    wall, cpu = time.perf_counter(), time.process_time()
    for i in range(3, 3 + steps):
        step(i)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    network.eval()
    test = dataset.test.images[: 2000 if model == "cnn" else 10_000]
    with torch.inference_mode():
        forward(test[: args.eval_chunk])
        eval_wall, eval_cpu = time.perf_counter(), time.process_time()
        for part in torch.split(test, args.eval_chunk):
            forward(part)
        eval_wall, eval_cpu = time.perf_counter() - eval_wall, time.process_time() - eval_cpu
    return {
        "warm_up_s": warm_up,
        "train_images_per_s": steps * 64 / wall,
        "train_images_per_cpu_s": steps * 64 / cpu,
        "eval_images_per_s": len(test) / eval_wall,
        "eval_images_per_cpu_s": len(test) / eval_cpu,
    }


def run() -> Section:
    env = dict(os.environ, TUNER_DATA_DIR=str(data_root()))
    section = Section(
        "Levers, one at a time (batch 64 steps on real MNIST, CPU)",
        [
            "variant",
            "train img/s",
            "train img/CPU-s",
            "eval img/s",
            "eval img/CPU-s",
            "warm-up s",
            "load avg",
        ],
    )
    results = []
    for name, model, options in VARIANTS:
        before = load_average()
        result = run_worker("benchmarks.levers", [model, *options], env=env)
        result.update(variant=name, load=before)
        results.append(result)
        section.rows.append(
            [
                name,
                f"{result['train_images_per_s']:,.0f}",
                f"{result['train_images_per_cpu_s']:,.0f}",
                f"{result['eval_images_per_s']:,.0f}",
                f"{result['eval_images_per_cpu_s']:,.0f}",
                f"{result['warm_up_s']:.1f}",
                f"{before:.1f}",
            ]
        )
        print(section.rows[-1], flush=True)
    section.notes.append(
        "img/CPU-s divides by the process's CPU time (all threads): with 2 threads it is half "
        "the wall rate on an idle machine; a later option overrides an earlier one"
    )
    section.data = {"levers": results}
    return section


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("model", choices=["cnn", "mlp"])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--channels-last", action="store_true")
    parser.add_argument("--fused", action="store_true")
    parser.add_argument("--compile", action="store_true")
    parser.add_argument("--classic-model", action="store_true", help="the example's CNN")
    parser.add_argument("--relu-after-pool", action="store_true")
    parser.add_argument("--rand-dropout", action="store_true")
    parser.add_argument("--passive", action="store_true", help="OMP_WAIT_POLICY=PASSIVE")
    parser.add_argument("--eval-chunk", type=int, default=128)
    parser.add_argument("--steps", type=int, default=0)
    args = parser.parse_args()
    if args.passive:  # read when the OpenMP runtime loads, with torch: set before the import
        os.environ["OMP_WAIT_POLICY"] = "PASSIVE"
    print(json.dumps(measure(args.model, args, Path(os.environ["TUNER_DATA_DIR"]))))


if __name__ == "__main__":
    main()
