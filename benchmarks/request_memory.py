"""Peak server memory for one Enroll request of many large images.

    python -m benchmarks.request_memory                 # 40 images, 4096x4096 uniform PNG
    python -m benchmarks.request_memory --images 10 --side 2048
    python -m benchmarks.request_memory --uncapped      # lift the count / pixel caps

A real `facedb serve` runs as a subprocess (SQLite + FAISS in a temp dir). One Enroll carries
N copies of a small-on-the-wire, large-when-decoded PNG (a uniform 4096x4096 image is 57 KB
compressed and 48 MiB as BGR pixels). The figure is the server's peak RSS (VmHWM) before and
after the call; the request's outcome (accepted, or the limit that refused it) is printed too.
Figures depend on the machine: printed, never asserted.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import cv2
import grpc
import numpy as np

from benchmarks.service import KEY, start_server
from facedb.client import FaceDBClient


def uniform_png(side: int) -> bytes:
    ok, data = cv2.imencode(".png", np.full((side, side, 3), 128, np.uint8))
    assert ok
    return data.tobytes()


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc status")


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=40, help="images in the one request")
    parser.add_argument("--side", type=int, default=4096, help="side of each square PNG")
    parser.add_argument(
        "--uncapped",
        action="store_true",
        help="lift max_images_per_request and max_request_pixels (memory of the decode loop)",
    )
    args = parser.parse_args(argv)
    if args.uncapped:  # the server subprocess reads its settings from the environment
        os.environ["FACEDB_MAX_IMAGES_PER_REQUEST"] = str(args.images)
        os.environ["FACEDB_MAX_REQUEST_PIXELS"] = str(args.images * args.side * args.side)
    image = uniform_png(args.side)
    with tempfile.TemporaryDirectory() as tmp:
        process, address = start_server(Path(tmp) / "data", 2, Path(tmp) / "serve.log")
        try:
            with FaceDBClient(address, api_key=KEY, timeout=600) as db:
                db.create_gallery("mem")
                before = peak_rss_mb(process.pid)
                start = time.perf_counter()
                try:
                    reply = db.enroll("mem", "x", [image] * args.images)
                    outcome = f"{sum(o.accepted for o in reply.outcomes)} accepted"
                except grpc.RpcError as error:
                    outcome = f"{error.code().name}: {error.details()}"
                seconds = time.perf_counter() - start
                after = peak_rss_mb(process.pid)
        finally:
            process.terminate()
            process.wait(30)
    print("| images | PNG KB | peak RSS before MB | after MB | +MB | seconds | outcome |")
    print("|---|---|---|---|---|---|---|")
    print(
        f"| {args.images} | {len(image) / 1024:.0f} | {before:.0f} | {after:.0f} "
        f"| {after - before:+.0f} | {seconds:.1f} | {outcome} |"
    )


if __name__ == "__main__":
    main()
