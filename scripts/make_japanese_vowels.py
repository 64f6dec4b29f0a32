"""Regenerate ``toolchain/train/data/japanese_vowels.npz`` from a copy that ships in a wheel.

The UCI Japanese Vowels data (Kudo, Toyama & Shimbo 1999; UCI Machine Learning Repository,
CC BY 4.0) ships inside the ``sktime`` and ``aeon`` wheels as the UEA/UCR ``.ts`` files
``JapaneseVowels_TRAIN.ts`` / ``JapaneseVowels_TEST.ts``. spikeforge does not depend on either
package; this script reads the files from

* an installed ``sktime`` or ``aeon`` (``pip install sktime==1.2.0`` or ``aeon==1.6.0`` in a
  scratch venv), or
* a folder or wheel given with ``--source`` (``pip download --no-deps sktime==1.2.0``),

and writes the compact copy the reservoir trainer loads (no download at run time)::

    python scripts/make_japanese_vowels.py --source sktime-1.2.0-py3-none-any.whl

Layout of the ``.npz`` (no pickle): ``frames`` float32 ``[total_frames, 12]`` (every series
concatenated, train first), ``lengths`` int16 (frames per series), ``labels`` int8 (0..8:
speaker 1..9), ``n_train`` (270).
"""

from __future__ import annotations

import argparse
import importlib.util
import io
import zipfile
from pathlib import Path

import numpy as np

NAMES = ("JapaneseVowels_TRAIN.ts", "JapaneseVowels_TEST.ts")
OUT = Path(__file__).resolve().parents[1] / "toolchain" / "train" / "data" / "japanese_vowels.npz"


def _from_source(source: Path) -> list[str]:
    if source.is_dir():
        found = {p.name: p for p in source.rglob("JapaneseVowels_*.ts")}
        return [found[n].read_text() for n in NAMES]
    with zipfile.ZipFile(source) as z:
        members = {Path(m).name: m for m in z.namelist() if Path(m).name in NAMES}
        return [z.read(members[n]).decode() for n in NAMES]


def _from_installed() -> list[str]:
    for pkg, sub in (("sktime", "datasets/data/JapaneseVowels"), ("aeon", "datasets/data/JapaneseVowels")):
        spec = importlib.util.find_spec(pkg)
        if spec and spec.submodule_search_locations:
            folder = Path(list(spec.submodule_search_locations)[0]) / sub
            if folder.is_dir():
                return [(folder / n).read_text() for n in NAMES]
    raise SystemExit("neither sktime nor aeon is installed; pass --source WHEEL_OR_FOLDER "
                     "(pip download --no-deps sktime==1.2.0)")


def parse_ts(text: str) -> tuple[list[np.ndarray], list[int]]:
    """Series ``[length, dims]`` and labels (1-based, as in the file) of a ``.ts`` file."""
    series, labels = [], []
    data = False
    for line in io.StringIO(text):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.lower() == "@data":
            data = True
            continue
        if not data:
            continue
        *dims, label = line.split(":")
        series.append(np.array([[float(v) for v in d.split(",")] for d in dims]).T)
        labels.append(int(label))
    return series, labels


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--source", type=Path, help="a wheel or folder holding the two .ts files")
    ap.add_argument("-o", "--output", type=Path, default=OUT)
    args = ap.parse_args()
    texts = _from_source(args.source) if args.source else _from_installed()
    (xtr, ytr), (xte, yte) = (parse_ts(t) for t in texts)
    frames = np.concatenate(xtr + xte).astype(np.float32)
    lengths = np.array([len(s) for s in xtr + xte], dtype=np.int16)
    labels = np.array(ytr + yte, dtype=np.int8) - 1
    np.savez_compressed(args.output, frames=frames, lengths=lengths, labels=labels,
                        n_train=np.int32(len(xtr)))
    print(f"wrote {args.output}: {len(xtr)} train + {len(xte)} test series, {len(frames)} frames")


if __name__ == "__main__":
    main()
