"""What every subcommand shares: batching, peak-memory measurement, GPU utilisation through NVML."""

from __future__ import annotations

import resource
import threading
from collections.abc import Iterator

import torch


def batches(items: list, size: int) -> Iterator[list]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


class PeakMemory:
    """Peak memory while the block runs: allocated GPU memory on CUDA, the process's peak resident set on a CPU."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.peak_bytes = 0

    def __enter__(self) -> PeakMemory:
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)
        return self

    def __exit__(self, *_exc) -> None:
        if self.device.type == "cuda":
            self.peak_bytes = torch.cuda.max_memory_allocated(self.device)
        else:
            self.peak_bytes = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024

    @property
    def peak_gib(self) -> float:
        return round(self.peak_bytes / 2**30, 4)


class GpuUtilisation:
    """Mean GPU utilisation (0-1) sampled through NVML while the block runs; None without a GPU or nvidia-ml-py."""

    def __init__(self, device: torch.device, interval_s: float = 0.1) -> None:
        self.device, self.interval_s = device, interval_s
        self.samples: list[float] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> GpuUtilisation:
        if self.device.type != "cuda":
            return self
        try:
            import pynvml
        except ImportError:
            return self
        try:
            pynvml.nvmlInit()
            handle = pynvml.nvmlDeviceGetHandleByIndex(self.device.index or 0)
        except pynvml.NVMLError:
            return self

        def sample() -> None:
            while not self._stop.wait(self.interval_s):
                self.samples.append(pynvml.nvmlDeviceGetUtilizationRates(handle).gpu / 100)

        self._thread = threading.Thread(target=sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *_exc) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join()

    @property
    def mean(self) -> float | None:
        return round(sum(self.samples) / len(self.samples), 4) if self.samples else None
