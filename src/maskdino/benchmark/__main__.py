"""Worker entry point: `python -m maskdino.benchmark SPEC.json` runs one workload."""

import sys

from maskdino.benchmark.worker import worker_main

sys.exit(worker_main(sys.argv[1]))
