"""Run benchmarks and print their figures with the machine they ran on.

    .venv/bin/python -m bench                 # all
    .venv/bin/python -m bench grading         # grading overhead and --jobs speed-up
    .venv/bin/python -m bench breakdown       # phases of a submission's time; nbgrader autograde as a peer
    .venv/bin/python -m bench lora_training   # reference LoRA/QLoRA training tokens/s and memory
    .venv/bin/python -m bench gpu_full        # LoRA/QLoRA on the full Llama-2-7B shape (GPU; random weights)
"""
from __future__ import annotations

import argparse
import importlib
import json
import os
import platform
import sys

BENCHES = ("grading", "breakdown", "lora_training", "gpu_full")


def machine() -> dict:
    import torch

    device = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu"
    return {"python": platform.python_version(), "torch": torch.__version__, "cpus": os.cpu_count(),
            "device": device, "platform": platform.platform()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", metavar="NAME",
                        help=f"benchmarks to run (default: all of {', '.join(BENCHES)})")
    parser.add_argument("--json", metavar="FILE", help="also write the figures as JSON")
    args = parser.parse_args(argv)
    unknown = [n for n in args.names if n not in BENCHES]
    if unknown:
        parser.error(f"unknown benchmark {unknown}; choose from {', '.join(BENCHES)}")
    figures = {"machine": machine()}
    print(json.dumps(figures["machine"]))
    for name in args.names or BENCHES:
        module = importlib.import_module(f"bench.{name}")
        figures[name] = module.run()
        print(json.dumps({name: figures[name]}, indent=2))
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(figures, fh, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
