"""Train every method, and ``none``, for several seeds with one recipe — each run a one-thread subprocess:

    python -m msda.training.sweep --out runs/shapes-scratch --methods all --seeds 0 1 2 --jobs 2 --resume

Each (method, seed) is ``python -m msda.train`` with ``OMP_NUM_THREADS=1`` writing
``<out>/<method>-s<seed>.safetensors`` (its metrics next to it, its output in ``<method>-s<seed>.log``); at most
``--jobs`` run at a time. The seed sets the initialisation, the data order and the mixing; the dataset seed
(``--data-seed``) is the same for every run. HardMix takes its predictions from an extra forward pass
(``--hardness forward``, the paper's Algorithm 1).

Runs whose checkpoint exists and that left no resume state are finished and skipped. A run that left a resume
state (``<out>.state.pt``: interrupted by Ctrl-C, a kill or a crash after its first epoch) is continued with
``msda.train --resume`` when ``--resume`` is given; without it the sweep refuses to start, so an interrupted
run is never silently restarted from scratch. Ctrl-C stops the sweep: the running jobs save their state and
``--resume`` continues them later.

After every run that ends, ``<out>/results.json`` and ``<out>/results.csv`` are rewritten atomically: one row
per (method, seed) with its status and accuracies, and (JSON) a per-method summary — mean ± sd of the
finished seeds' test accuracy, ordered by that mean.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import signal
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import msda

from .checkpoint import atomic_write, read_checkpoint_meta
from .outputs import DiskFull
from .recipes import RECIPES

DEFAULT_RECIPE = "shapes-scratch"
RESULT_FIELDS = ("method", "seed", "status", "test_acc", "train_acc", "epochs", "first_epoch_test_acc",
                 "epoch_left_chance", "seconds", "checkpoint", "log")
CHANCE_SIGMAS = 3.0
"""A run has left chance at the first epoch whose test accuracy exceeds 1/K by this many binomial standard
deviations of a chance-level classifier on the test set, √(p(1 − p)/n) with p = 1/K (2 points for K = 10 and
n = 2 000)."""


@dataclass
class Run:
    method: str
    seed: int
    out: Path
    status: str = "pending"  # pending | done | failed | interrupted | running
    seconds: float | None = None
    process: subprocess.Popen | None = field(default=None, repr=False)
    started: float = 0.0
    resume: bool = False

    @property
    def name(self) -> str:
        return f"{self.method}-s{self.seed}"

    @property
    def state_path(self) -> Path:
        return self.out.with_name(self.out.name + ".state.pt")

    @property
    def log_path(self) -> Path:
        return self.out.with_name(self.name + ".log")

    @property
    def metrics_path(self) -> Path:
        """The per-epoch metrics: the finished run's, else the progress of the run (see MetricsLog)."""
        final = self.out.with_name(self.out.stem + ".metrics.jsonl")
        partial = self.out.with_name(self.out.stem + ".metrics.partial.jsonl")
        return partial if self.status != "done" and partial.exists() else final


def expand_methods(names: list[str]) -> list[str]:
    """``all`` → none plus every method of msda.METHODS; otherwise the names, checked, duplicates dropped."""
    allowed = ("none",) + msda.METHODS
    methods: list[str] = []
    for name in names:
        for method in (allowed if name == "all" else (name,)):
            if method not in allowed:
                raise ValueError(f"--methods: unknown method {method!r}; allowed: all, {', '.join(allowed)}")
            if method not in methods:
                methods.append(method)
    return methods


def plan(out: Path, methods: list[str], seeds: list[int], *, resume: bool, recipe: str = DEFAULT_RECIPE) -> list[Run]:
    """The runs of the sweep with their status on disk: done (checkpoint, no state), interrupted (a state to
    resume: needs ``resume``) or pending. A finished checkpoint of another method, seed or recipe is refused."""
    runs, interrupted = [], []
    for method in methods:
        for seed in seeds:
            run = Run(method, seed, out / f"{method}-s{seed}.safetensors")
            if run.state_path.exists():
                run.resume = True
                interrupted.append(run.name)
            elif run.out.exists():
                _check_finished(run, recipe)
                run.status = "done"
            runs.append(run)
    if interrupted and not resume:
        raise ValueError(f"{len(interrupted)} run(s) in {out} were interrupted ({', '.join(interrupted)}); pass "
                         f"--resume to continue them, or delete their .state.pt files to start them over")
    return runs


def _check_finished(run: Run, recipe: str) -> None:
    meta = read_checkpoint_meta(run.out) or {}
    found = {"method": meta.get("method"), "seed": meta.get("seed"), "recipe": (meta.get("recipe") or {}).get("name")}
    wanted = {"method": run.method, "seed": run.seed, "recipe": recipe}
    if found != wanted:
        raise ValueError(f"{run.out} exists but was not trained by this sweep (it records {found}, the sweep wants "
                         f"{wanted}); use another --out or remove it")


def train_command(run: Run, args: argparse.Namespace) -> list[str]:
    """The ``msda.train`` command line of one run."""
    command = [sys.executable, "-m", "msda.train", "--data", "shapes", "--arch", args.arch, "--method", run.method,
               "--recipe", args.recipe, "--train-size", str(args.train_size), "--test-size", str(args.test_size),
               "--data-seed", str(args.data_seed), "--seed", str(run.seed), "--device", "cpu", "--no-progress",
               "--out", str(run.out)]
    if args.size is not None:
        command += ["--size", str(args.size)]
    if args.epochs is not None:
        command += ["--epochs", str(args.epochs)]
    if run.method == "hardmix":
        command += ["--hardness", "forward"]
    if run.resume:
        command.append("--resume")
    return command


def one_thread_environment() -> dict[str, str]:
    env = dict(os.environ)
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        env[name] = "1"
    return env


def chance_threshold(num_classes: int, test_images: int) -> float:
    """The test accuracy above which a run counts as having left chance (:data:`CHANCE_SIGMAS`)."""
    p = 1.0 / num_classes
    return p + CHANCE_SIGMAS * (p * (1.0 - p) / test_images) ** 0.5


def result_row(run: Run, test_images: int, num_classes: int = 10) -> dict:
    """One results row from the run's checkpoint metadata and per-epoch metrics (what exists of them)."""
    row = {key: None for key in RESULT_FIELDS}
    row.update(method=run.method, seed=run.seed, status=run.status, seconds=run.seconds,
               checkpoint=run.out.name, log=run.log_path.name)
    epochs = []
    if run.metrics_path.exists():
        epochs = [json.loads(line) for line in run.metrics_path.read_text().splitlines() if line.strip()]
    evaluated = [e for e in epochs if "test_acc" in e]
    if epochs:
        row["epochs"] = epochs[-1]["epoch"]
        row["train_acc"] = epochs[-1].get("train_acc")
    if evaluated:
        row["test_acc"] = evaluated[-1]["test_acc"]
        first = evaluated[0]
        row["first_epoch_test_acc"] = first["test_acc"] if first["epoch"] == 1 else None
        threshold = chance_threshold(num_classes, test_images)
        above = [e["epoch"] for e in evaluated if e["test_acc"] > threshold]
        row["epoch_left_chance"] = above[0] if above else None
    if run.status == "done" and run.out.exists():
        meta = read_checkpoint_meta(run.out) or {}
        row["test_acc"] = meta.get("test_accuracy", row["test_acc"])
        row["epochs"] = meta.get("epochs", row["epochs"])
    return row


def summary(rows: list[dict]) -> list[dict]:
    """Per method: the finished seeds' test accuracies, their mean and sd (None below two), ordered by mean."""
    by_method: dict[str, list[dict]] = {}
    for row in rows:
        by_method.setdefault(row["method"], []).append(row)
    table = []
    for method, method_rows in by_method.items():
        accuracies = {row["seed"]: row["test_acc"] for row in method_rows
                      if row["status"] == "done" and row["test_acc"] is not None}
        values = list(accuracies.values())
        table.append({"method": method, "seeds": sorted(accuracies), "test_acc": accuracies,
                      "mean": statistics.fmean(values) if values else None,
                      "sd": statistics.stdev(values) if len(values) > 1 else None})
    return sorted(table, key=lambda item: (item["mean"] is None, -(item["mean"] or 0.0), item["method"]))


def write_results(out: Path, runs: list[Run], config: dict) -> None:
    """Rewrite results.json and results.csv atomically."""
    rows = [result_row(run, config["test_size"]) for run in runs]
    document = {"config": config, "runs": rows, "summary": summary(rows)}
    text = json.dumps(document, indent=2) + "\n"
    atomic_write(out / "results.json", lambda tmp: Path(tmp).write_text(text))
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=RESULT_FIELDS)
    writer.writeheader()
    writer.writerows(rows)
    table = buffer.getvalue()
    atomic_write(out / "results.csv", lambda tmp: Path(tmp).write_text(table))


def sweep(args: argparse.Namespace) -> list[Run]:
    """Run the sweep of `args` (see :func:`build_parser`); returns the runs with their final status."""
    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    runs = plan(out, args.methods, args.seeds, resume=args.resume, recipe=args.recipe)
    config = {key: (str(value) if isinstance(value, Path) else value) for key, value in vars(args).items()}
    queue = [run for run in runs if run.status != "done"]
    running: list[Run] = []
    environment = one_thread_environment()
    write_results(out, runs, config)
    say = (lambda text: None) if args.quiet else (lambda text: print(text, flush=True))
    say(f"sweep: {len(runs)} runs, {len(runs) - len(queue)} already finished, {len(queue)} to do, "
        f"{args.jobs} at a time → {out}")
    previous_term = signal.signal(signal.SIGTERM, _terminate) if _main_thread() else None
    try:
        while queue or running:
            while queue and len(running) < args.jobs:
                run = queue.pop(0)
                command = train_command(run, args)
                with open(run.log_path, "a") as log:
                    log.write(f"$ {' '.join(command)}\n")
                    log.flush()
                    run.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=environment,
                                                   start_new_session=True)  # our Ctrl-C handler forwards it
                run.status, run.started = "running", time.monotonic()
                running.append(run)
                say(f"  start {run.name}{' (resume)' if run.resume else ''}")
            time.sleep(args.poll)
            for run in [r for r in running if r.process.poll() is not None]:
                running.remove(run)
                code = run.process.returncode
                run.seconds = round(time.monotonic() - run.started, 1)
                run.status = "done" if code == 0 and run.out.exists() and not run.state_path.exists() else (
                    "interrupted" if run.state_path.exists() else "failed")
                run.resume = run.state_path.exists()
                write_results(out, runs, config)
                say(f"  {run.status} {run.name} ({run.seconds:.0f} s, exit {code}; log {run.log_path})")
    except KeyboardInterrupt:
        # Ask every job to save its resume state (msda.train finishes the step, saves and exits), then wait.
        for run in running:
            if run.process.poll() is None:
                run.process.send_signal(signal.SIGINT)
        for run in running:
            run.process.wait()
            run.status = "interrupted" if run.state_path.exists() else "failed"
        write_results(out, runs, config)
        say("sweep interrupted: continue with the same command and --resume")
        raise
    finally:
        if previous_term is not None:
            signal.signal(signal.SIGTERM, previous_term)
    return runs


def _terminate(signum, frame):
    """SIGTERM (a kill, a logout) stops the sweep like Ctrl-C: the jobs save their state first."""
    raise KeyboardInterrupt


def _main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m msda.training.sweep", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--out", required=True, type=Path, help="folder for the checkpoints, logs and results")
    p.add_argument("--methods", nargs="+", default=["all"], help="method names, or all (none + msda.METHODS)")
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    p.add_argument("--jobs", type=int, default=2, help="runs at a time (each on one thread)")
    p.add_argument("--resume", action="store_true", help="continue interrupted runs from their saved state")
    p.add_argument("--recipe", choices=tuple(RECIPES), default=DEFAULT_RECIPE)
    p.add_argument("--arch", default="resnet20")
    p.add_argument("--train-size", type=int, default=2000)
    p.add_argument("--test-size", type=int, default=2000)
    p.add_argument("--data-seed", type=int, default=0)
    p.add_argument("--size", type=int, help="image side (default: the dataset's, 32)")
    p.add_argument("--epochs", type=int, help="override the recipe's epochs (e.g. 1 for a smoke test)")
    p.add_argument("--poll", type=float, default=1.0, help=argparse.SUPPRESS)
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    return p


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        args.methods = expand_methods(args.methods)
        for name in ("jobs", "train_size", "test_size"):
            if getattr(args, name) < 1:
                raise ValueError(f"--{name.replace('_', '-')} must be at least 1, got {getattr(args, name)}")
        if args.epochs is not None and args.epochs < 1:
            raise ValueError(f"--epochs must be at least 1, got {args.epochs}")
        if len(set(args.seeds)) != len(args.seeds) or min(args.seeds) < 0:
            raise ValueError(f"--seeds must be distinct non-negative integers, got {args.seeds}")
        if not args.poll > 0:
            raise ValueError(f"--poll must be positive, got {args.poll}")
    except ValueError as error:
        parser.error(str(error))
    return args


def main(argv: list[str] | None = None) -> list[Run]:
    args = parse_args(argv)
    try:
        runs = sweep(args)
    except ValueError as error:
        build_parser().error(str(error))
    except KeyboardInterrupt:
        raise SystemExit(130) from None
    except DiskFull as error:  # results.json/.csv on a full disk: one line, the runs' own files are kept
        raise SystemExit(f"error: {error}") from None
    failed = [run.name for run in runs if run.status != "done"]
    if failed:
        print(f"sweep: {len(failed)} run(s) did not finish: {', '.join(failed)} (see their logs)", file=sys.stderr)
        raise SystemExit(1)
    return runs


if __name__ == "__main__":
    main()
