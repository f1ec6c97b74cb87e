"""Vendor textgenrnn's pretrained character-level language model into `sparse_ae_tf/assets/`.

Usage (from the repository root; needs the package registry, once):

    python tools/build_charlm.py            # pip download --no-deps textgenrnn==2.0.0, extract the two files
    python tools/build_charlm.py --sdist textgenrnn-2.0.0.tar.gz   # from an sdist already downloaded

The sdist of textgenrnn 2.0.0 (MIT licence, Max Woolf) ships `textgenrnn/textgenrnn_weights.hdf5` (the network's
weights, 1.9 MB) and `textgenrnn/textgenrnn_vocab.json` (464 characters, indices 1-464). They are copied byte for
byte, checked against the sha256 sums below; `sparse_ae_tf.charlm.load_char_lm` reads them. The package itself (which
targets the old `tf.keras`) is not installed.
"""
import argparse
import hashlib
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

VERSION = '2.0.0'
SHA256 = {  # of the files inside the sdist, as the registry serves it
    'textgenrnn_weights.hdf5': '6a89ca4235ed9f00be7b2acd65d5fe4a099967d676bfe20afb696106286ffbca',
    'textgenrnn_vocab.json': 'f9c6c0db9b07fb57da023d32df66e16a488d086c138e15706307bb5177c2be74',
}
ASSETS = Path(__file__).resolve().parents[1] / 'sparse_ae_tf' / 'assets'


def download(folder: Path) -> Path:
    "The sdist of textgenrnn, fetched with pip into `folder`."
    subprocess.run([sys.executable, '-m', 'pip', 'download', '--no-deps', '--no-binary', ':all:',
                    f'textgenrnn=={VERSION}', '-d', str(folder)], check=True)
    return next(folder.glob(f'textgenrnn-{VERSION}.tar.gz'))


def extract(sdist: Path, out: Path) -> None:
    "Copy the weights and the vocabulary out of `sdist` into `out`, checking their sums."
    out.mkdir(parents=True, exist_ok=True)
    with tarfile.open(sdist) as tar:
        for name in SHA256:
            data = tar.extractfile(f'textgenrnn-{VERSION}/textgenrnn/{name}').read()
            digest = hashlib.sha256(data).hexdigest()
            if digest != SHA256[name]:
                raise ValueError(f'{name}: sha256 {digest}, expected {SHA256[name]}')
            (out / name).write_bytes(data)
            print(f'wrote {out / name}: {len(data) / 1e6:.2f} MB, sha256 {digest}')


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--sdist', type=Path, help='textgenrnn-2.0.0.tar.gz already downloaded (default: fetch it with pip)')
    parser.add_argument('--out', type=Path, default=ASSETS, help='where to write the two files (default: sparse_ae_tf/assets)')
    args = parser.parse_args(argv)
    if args.sdist: extract(args.sdist, args.out)
    else:
        with tempfile.TemporaryDirectory() as tmp: extract(download(Path(tmp)), args.out)


if __name__ == '__main__':
    main()
