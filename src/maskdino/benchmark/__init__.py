"""Benchmark harness: inference and training time and peak memory of presets, beside peer models.

Every workload (a model, inference or a training step, a batch size) runs in a fresh subprocess, so one
run's allocations cannot raise another's peak memory: the worker builds the model with seeded random
weights, loads real photos from the bundled COCO demo set (resized to the benchmark size, or with
`--mixed-sizes` each at its own aspect ratio through the preset's test resize), runs warm-up calls, then
timed calls of the model's own inference path (`model(images)`: preprocess, network, postprocess), and reports the median wall and process-CPU time (all threads; less inflated
than wall time when other processes share the cores) and the peak memory of those calls.

Peak memory. CPU: the resident set size, whose high-water mark (VmHWM) is reset through
/proc/self/clear_refs right before the first call; `mem` = weights + (peak RSS - RSS before the first
call), i.e. the model and what its calls allocate, without the interpreter and libraries (which differ
between peers). Where the reset is impossible (not Linux) the lifetime ru_maxrss is used and said so.
CUDA: `torch.cuda.max_memory_allocated` since the first call (weights included).

`maskdino bench` calls `run_benchmarks`; the peer models (torchvision Mask R-CNN, HF Mask2Former) are
built by `peers.py` and run beside ours when their libraries import. In the same package: `stages.py`
(where one call spends its time, `python -m maskdino.benchmark.stages`) and `deform_attn.py` (the
deformable-attention implementations, `python -m maskdino.benchmark.deform_attn`).
"""

from maskdino.benchmark.report import system_info
from maskdino.benchmark.runner import add_arguments, run_benchmarks
from maskdino.benchmark.workloads import (
    STAGES,
    Peer,
    Prepared,
    SkipWorkload,
    demo_photos,
    stage_times,
    synchronize,
)

__all__ = [
    "STAGES",
    "Peer",
    "Prepared",
    "SkipWorkload",
    "add_arguments",
    "demo_photos",
    "run_benchmarks",
    "stage_times",
    "synchronize",
    "system_info",
]
