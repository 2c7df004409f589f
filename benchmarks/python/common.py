"""Shared by the Python benchmark scripts: command line, timing statistics, JSON output.

Each script maps workload names (the same as the C++ benchmarks' "<workload>/..." names) to a
function cfg -> result, and calls main(). The output, one JSON object on stdout:

    {"python_version": "3.11.7", "mode": "short",
     "results": {"<workload>": {"metric": "seconds_per_op" | "bytes_per_second",
                                "value": <median of the samples>, "samples": [...], ...}
                 | {"error": "<message>"}}}
"""

import argparse
import json
import platform
import statistics
import sys
import time


def result(metric, samples, **extra):
    """A workload's figure: the median of its timed batches, plus their spread."""
    mean = statistics.fmean(samples)
    return {
        "metric": metric,
        "value": statistics.median(samples),
        "samples": samples,
        "cv": statistics.pstdev(samples) / mean if len(samples) > 1 and mean else 0.0,
        **extra,
    }


def main(workloads, config):
    ap = argparse.ArgumentParser(description=sys.modules["__main__"].__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--short", action="store_true", help="quick run (fewer, shorter batches)")
    ap.add_argument("--workload", action="append", choices=sorted(workloads),
                    help="run only this workload (repeatable); default: all")
    ap.add_argument("--list", action="store_true", help="print the workload names and exit")
    args = ap.parse_args()
    if args.list:
        print("\n".join(workloads))
        return
    mode = "short" if args.short else "long"
    results = {}
    for name in args.workload or list(workloads):
        t0 = time.perf_counter()
        try:
            results[name] = workloads[name](config[mode])
        except Exception as e:  # reported in the JSON, the other workloads still run
            results[name] = {"error": f"{type(e).__name__}: {e}"}
        results[name]["wall_seconds"] = time.perf_counter() - t0
    json.dump({"python_version": platform.python_version(),
               "implementation": platform.python_implementation(),
               "mode": mode, "results": results}, sys.stdout, indent=1)
    print()
