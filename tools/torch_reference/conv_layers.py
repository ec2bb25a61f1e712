"""Times PyTorch on the single convolutions that `cargo bench --bench hot_paths -- conv2d` times
in burn (the same shapes, from ResNet18 BiSeNet on a 360x480 frame).

    python tools/torch_reference/conv_layers.py

2 threads, denormals flushed, inference mode, a fresh input every run, median of 10 after 2
warm-up runs; like the Rust side, the time includes reading the output (`.numpy()`).
"""

import statistics
import time

import torch

LAYERS = [  # name, in, out, kernel, stride, input HxW
    ("7x7 s2 3->64 at 360x480", 3, 64, 7, 2, (360, 480)),
    ("3x3 s2 64->64 at 180x240", 64, 64, 3, 2, (180, 240)),
    ("3x3 64->64 at 90x120", 64, 64, 3, 1, (90, 120)),
    ("3x3 512->512 at 12x15", 512, 512, 3, 1, (12, 15)),
]


def main():
    torch.set_num_threads(2)
    torch.set_flush_denormal(True)
    with torch.inference_mode():
        for name, cin, cout, k, stride, (h, w) in LAYERS:
            conv = torch.nn.Conv2d(cin, cout, k, stride, k // 2).eval()
            times = []
            for run in range(12):
                x = torch.rand(1, cin, h, w)
                start = time.perf_counter()
                conv(x).numpy()
                if run >= 2:
                    times.append((time.perf_counter() - start) * 1e3)
            print(f"conv2d/{name:28} {statistics.median(times):7.2f} ms")


if __name__ == "__main__":
    main()
