"""The compressor (python -m junglegpt.compress) on whole texts: seconds each way, and its file against the
mixture's score read in order.

    .venv/bin/python benchmarks/compress_speed.py --out OUT [--size 1M] [--streams 64] \
        [--mixture benchmarks/results/mixture_full-cpu-1M.json] [--name full-cpu-1M]

For the validation text and the held-out book of the run in OUT: compress with the compressor's
defaults (the network learning in its output layer, mixed with count models primed on OUT's
training text, the text read as --streams stretches side by side), time it, decompress, check
the bytes, time that. With --mixture (what benchmarks/mixture.py wrote for the same model), the
settings of the mixture are those its rule chose for each text, and the row also gives the
mixture's bits per byte read in order ("network + counts, network learning"), so the cost of
reading side by side, and of learning in the output layer only, is the difference.

Written to benchmarks/results/compress_<name>.json with the machine, one text at a time.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from junglegpt import compress, mixture  # noqa: E402
from junglegpt import data as jb  # noqa: E402
from junglegpt.environment import describe_hardware  # noqa: E402
from junglegpt.io import atomic_write_json, read_json  # noqa: E402
from junglegpt.paths import OutputDirs  # noqa: E402

READ_IN_ORDER = "network + counts, network learning"  # benchmarks/mixture.py's row to compare with


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="a run's folder (models/<size>, data/train.txt)")
    parser.add_argument("--size", default="1M")
    parser.add_argument("--streams", type=int, default=compress.streams.STREAMS)
    parser.add_argument("--mixture", type=Path, help="benchmarks/mixture.py's results for the same model")
    parser.add_argument("--texts", nargs="+", default=["val", "heldout"], choices=["val", "heldout"])
    parser.add_argument("--name", default="cpu")
    args = parser.parse_args(argv)
    out = OutputDirs(args.out)
    folder = out.model(args.size)
    texts = {"val": out.val_txt.read_bytes(), "heldout": jb.load_heldout(out.raw).encode("utf-8")}
    in_order = {}
    if args.mixture:
        rows = read_json(args.mixture)["sizes"][args.size]["rows"]
        in_order = {row["text"]: row[READ_IN_ORDER] for row in rows}
    result_path = ROOT / "benchmarks" / "results" / f"compress_{args.name}.json"
    results = {"machine": describe_hardware(), "size": args.size, "streams": args.streams,
               "lr": compress.DEFAULT_LR, "threads": compress.THREADS, "rows": []}
    for text in args.texts:
        data = texts[text]
        settings = mixture.Settings(**in_order[text]["settings"]) if text in in_order else None
        started = time.perf_counter()
        blob = compress.compress(data, folder, n_streams=args.streams, settings=settings)
        middle = time.perf_counter()
        assert compress.decompress(blob, folder) == data, "the round trip lost bytes"
        ended = time.perf_counter()
        header = compress.read_header(blob)
        row = {"text": text, "bytes": len(data), "tokens": header.n_tokens, "streams": header.streams,
               "settings": header.settings().__dict__, "file_bytes": len(blob),
               "bpb": 8 * len(blob) / len(data), "compress_s": middle - started, "decompress_s": ended - middle}
        if text in in_order:
            row["mixture_in_order_bpb"] = in_order[text]["bpb"]
            row["extra"] = row["bpb"] / in_order[text]["bpb"] - 1
        results["rows"].append(row)
        print(row, flush=True)
        atomic_write_json(result_path, results)
    print(f"written to {result_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
