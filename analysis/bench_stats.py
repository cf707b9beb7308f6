"""Time of :func:`analysis.stats.compare` at study size: 15 methods × 3 seeds × 10 000 items × 2 000 bootstrap
replicates (the paired two-level bootstrap of Owen, "The pigeonhole bootstrap", Ann. Appl. Stat. 2007).

Prints every repetition's wall time, then min and median, and the peak resident memory the first call added
to the process (``ru_maxrss``; Linux and macOS). Outcomes are 0/1 correctness; the target is well under 5 s
on two CPU cores.

    python -m analysis.bench_stats [--methods 15] [--seeds 3] [--items 10000] [--n-boot 2000] [--repeats 5]
                                   [--device cpu|cuda] [--threads N]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

import torch

from .stats import compare


def _peak_rss_mib() -> float | None:
    try:
        import resource
    except ImportError:  # Windows
        return None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 2**10  # bytes on macOS, KiB on Linux


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--methods", type=int, default=15)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--items", type=int, default=10_000)
    parser.add_argument("--n-boot", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's own)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    generator = torch.Generator(device=device).manual_seed(0)
    outcomes = {f"method{m}": torch.rand(args.seeds, args.items, generator=generator, device=device) < 0.8
                for m in range(args.methods)}
    outcomes = {"none": outcomes.pop("method0"), **outcomes}

    def run() -> float:
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        start = time.perf_counter()
        compare(outcomes, n_boot=args.n_boot, generator=torch.Generator(device=device).manual_seed(1))
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        return time.perf_counter() - start

    before = _peak_rss_mib()
    times = [run()]
    after = _peak_rss_mib()
    times += [run() for _ in range(args.repeats - 1)]
    print(f"compare: {args.methods} methods × {args.seeds} seeds × {args.items} items × {args.n_boot} replicates "
          f"on {device} ({torch.get_num_threads()} torch threads)")
    print("  runs (s): " + " ".join(f"{t:.3f}" for t in times))
    print(f"  min {min(times):.3f} s, median {statistics.median(times):.3f} s")
    added = None if before is None else after - before
    if added is not None:
        print(f"  peak resident memory added by the first call: {added:.0f} MiB (process peak {after:.0f} MiB)")
    return {"times_s": times, "min_s": min(times), "median_s": statistics.median(times), "peak_added_mib": added}


if __name__ == "__main__":
    main()
