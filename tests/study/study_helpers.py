"""Helpers of the study tests: tiny real videos in method folders, a server subprocess."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np

from vqe.video import write_video

WIDTH, HEIGHT, FRAMES = 64, 48, 10
METHODS = ("input", "baseline", "ours")
VIDEOS = ("clip_a.mp4", "clip_b.mp4")


def scene(seed: int) -> list[np.ndarray]:
    """A moving gradient with a square: smooth enough to encode well, changing every frame."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:HEIGHT, 0:WIDTH]
    base = rng.uniform(60, 200, 3)
    frames = []
    for t in range(FRAMES):
        image = np.stack([base[c] + 40 * np.sin((x + 3 * t) / 9 + c) for c in range(3)], -1)
        image[10 + t : 22 + t, 20:32] = (230, 190, 160)
        frames.append(np.clip(image, 0, 255).astype(np.uint8))
    return frames


def method_frames(method: str, frames: list[np.ndarray], seed: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    if method == "input":  # dim and noisy
        return [
            np.clip(f * 0.45 + rng.normal(0, 10, f.shape), 0, 255).astype(np.uint8) for f in frames
        ]
    if method == "baseline":  # a little dim
        return [np.clip(f * 0.8, 0, 255).astype(np.uint8) for f in frames]
    return frames


def make_method_folders(root: Path, methods=METHODS, videos=VIDEOS) -> dict[str, Path]:
    folders = {}
    for index, name in enumerate(videos):
        clean = scene(index)
        for method in methods:
            folder = root / method
            write_video(folder / name, method_frames(method, clean, index), crf=23,
                        preset="ultrafast")
            folders[method] = folder
        write_video(root / "targets" / name, clean, crf=18, preset="ultrafast")
    return folders


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class ServerProcess:
    """``vqe study serve`` in a subprocess, on a free port of 127.0.0.1."""

    def __init__(self, study: Path, port: int | None = None) -> None:
        self.study, self.port = study, port or free_port()
        self.process: subprocess.Popen | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 30.0) -> ServerProcess:
        env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "vqe.cli.study", "serve", str(self.study), "--port", str(self.port)],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the study server exited: {self.process.stdout.read()}")
            try:
                urllib.request.urlopen(self.base + "/", timeout=1)
            except urllib.error.HTTPError:  # the 404 of "/": the server answers
                return self
            except OSError:
                time.sleep(0.1)
        self.kill()
        raise RuntimeError(f"the study server did not answer on port {self.port} in {timeout} s")

    def kill(self) -> None:
        """SIGKILL: no shutdown handler runs, as when the machine or the process dies."""
        if self.process is not None and self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)
        if self.process is not None and self.process.stdout is not None:
            self.process.stdout.close()
        self.process = None
