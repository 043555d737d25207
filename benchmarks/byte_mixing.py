"""Bytes after tokens (issue 32's stretch): the compressor's token mixture, mixed bit by bit with
byte-level context models (junglegpt.bytemix), against the token mixture alone.

    .venv/bin/python benchmarks/byte_mixing.py --out OUT [--size 1M] [--name full-cpu-1M]

For the validation text and the held-out book of the run in OUT: the compressor's predictor reads
the text exactly as `python -m junglegpt.compress` does (its defaults: 16 streams side by side,
the network learning in its output layer, both stages of the token mixture, count models primed
on OUT's training text), and each token's distribution is turned into the decisions of its path
(`bytemix.TokenTrie`); those are kept in OUT/byte_mixing/ (named by the model and the texts) so
that the byte stage can be tried again without the network. Then the byte stage's settings are
chosen on the validation text (the grid below) and the held-out book is scored once, with them.
Bits per byte of the whole text:

- "token mixture": what the compressor's mixture spends (its file is a little more: its coder's
  frequencies are rounded);
- "token mixture, as decisions": the same, spent decision by decision with 16-bit probabilities;
- "byte stage": the decisions mixed with the byte models, with the settings validation chose;
- "byte stage without ...": the same with one part taken away (ABLATIONS), on both texts.

The compressor's own file for the held-out book (benchmarks/results/compress_<name>.json) is
the row to compare with: "token mixture" plus its coder's rounding.

Written to benchmarks/results/byte_mixing_<name>.json with the machine and the seconds.
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import math
import sys
import time
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from junglegpt import bytemix, compress, streams  # noqa: E402
from junglegpt import data as jb  # noqa: E402
from junglegpt.environment import describe_hardware  # noqa: E402
from junglegpt.io import atomic_write_json  # noqa: E402
from junglegpt.paths import OutputDirs  # noqa: E402

PARTS = ("network", "counts", "product")  # the token mixture's parts, given to the mixers as inputs of their own
# What each part of the byte stage buys: the chosen settings with one part taken away.
ABLATIONS = {
    "the APMs": lambda rec, chosen: score(rec, replace(chosen, apm_weight=0.0)),
    "the token mixture's parts": lambda rec, chosen: score(rec, chosen, parts=()),
    "the bytes' say in STOP decisions": lambda rec, chosen: score(rec, replace(chosen, stop_bytes=False)),
    "tables of 2**24 counters (2**22 instead)": lambda rec, chosen: score(rec, replace(chosen, table_bits=22)),
}
GRID = {"mixer_lr": (0.001, 0.002, 0.004), "apm_weight": (0.0, 0.25, 0.5, 0.75)}


def record(folder: Path, data: bytes, prime: Path) -> dict[str, np.ndarray]:
    """Run the compressor's predictor over `data` and keep every token's decisions."""
    model, tokenizer = compress.load(folder)
    trie = bytemix.TokenTrie.from_tokenizer(tokenizer)
    prime_ids, _ = compress._prime(folder, prime, tokenizer)
    text, _ = compress._as_text(data, tokenizer)
    ids = tokenizer.encode(text, verbose=False)
    layout = streams.Layout.for_text(len(ids), streams.STREAMS)
    predictor = streams.Predictor(model, tokenizer.eos_token_id, layout, compress.DEFAULT_LR,
                                  compress.chosen_settings(folder), prime_ids)
    by_stream = layout.stream_ids(ids)
    done = [0] * layout.streams
    parts: dict[str, list] = {name: [] for name in ("kind", "p1", "bit", "certain", "counts", "lo", "stream")}

    def code(probs, active):
        tokens = [by_stream[s][done[s]] for s in active]
        for s in active:
            done[s] += 1
        for name, value in zip(("kind", "p1", "bit", "certain", "counts", "lo"), trie.decisions(probs, tokens),
                               strict=True):
            parts[name].append(value)
        log_network, logs, _, product = predictor._parts  # the step's parts, as Predictor._mix left them
        for name, distribution in (("network", np.exp(log_network)), ("counts", np.exp(logs[0])),
                                   ("product", product)):
            parts.setdefault("p1_" + name, []).append(trie.decisions(distribution, tokens)[1])
        parts["stream"].append(np.array(active))
        return tokens

    with compress._fixed_threads():
        predictor.run(code)
    recorded = {name: np.concatenate(values) for name, values in parts.items()}
    recorded["token_nats"] = np.array(predictor.nats["mixture"])
    recorded["stream_bytes"] = np.array([sum(len(trie.spellings[t]) for t in ids_) for ids_ in by_stream])
    if recorded["stream_bytes"].sum() != len(data):
        raise SystemExit("the tokens do not spell the text byte for byte (a text the tokenizer reads as latin-1?): "
                         "the byte stage needs UTF-8 text")
    recorded["prime"] = np.frombuffer(prime.read_bytes(), np.uint8)
    recorded["n_bytes"] = np.array(len(data))
    recorded["continuations"] = trie.continuations()
    return recorded


def score(recorded: dict[str, np.ndarray], settings: bytemix.Settings, parts: tuple[str, ...] = PARTS) -> float:
    costs = bytemix.mix(recorded["kind"], recorded["p1"], recorded["bit"], recorded["certain"], recorded["stream"],
                        recorded["counts"], recorded["lo"], recorded["continuations"], recorded["prime"].tobytes(),
                        len(recorded["stream_bytes"]), settings,
                        np.stack([recorded["p1_" + name] for name in parts], axis=1) if parts else None)
    return float(costs.sum() / recorded["n_bytes"])


def as_decisions(recorded: dict[str, np.ndarray]) -> float:
    """The token mixture's own probabilities, spent decision by decision at 16 bits."""
    p1 = np.clip(np.floor(recorded["p1"] * 65536 + 0.5), 1, 65535) / 65536
    p = np.where(recorded["bit"] == 1, p1, 1 - p1)
    return float(-np.log2(p[~recorded["certain"]]).sum() / recorded["n_bytes"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="a run's folder (models/<size>, data/train.txt)")
    parser.add_argument("--size", default="1M")
    parser.add_argument("--name", default="cpu")
    args = parser.parse_args(argv)
    out = OutputDirs(args.out)
    folder = out.model(args.size)
    texts = {"val": out.val_txt.read_bytes(), "heldout": jb.load_heldout(out.raw).encode("utf-8")}
    cache = out.root / "byte_mixing"
    cache.mkdir(exist_ok=True)
    results = {"machine": describe_hardware(), "size": args.size, "streams": streams.STREAMS, "grid": GRID,
               "rows": []}
    recorded = {}
    for text, data in texts.items():
        # the decisions depend on the model, the texts and the predictor's code: a change records afresh
        sources = b"".join((ROOT / "junglegpt" / f"{name}.py").read_bytes()
                           for name in ("streams", "mixture", "dynamic", "compress", "bytemix"))
        key = hashlib.sha256(compress.model_hash(folder) + data + out.train_txt.read_bytes() + sources).hexdigest()[:12]
        path = cache / f"{args.size}_{text}_{key}.npz"
        started = time.perf_counter()
        if not path.exists():
            with open(path.with_suffix(".tmp"), "wb") as f:
                np.savez(f, **record(folder, data, out.train_txt))
            path.with_suffix(".tmp").replace(path)
        recorded[text] = dict(np.load(path))
        print(f"{text}: decisions recorded in {time.perf_counter() - started:.0f} s", flush=True)

    tried = []
    for values in itertools.product(*GRID.values()):
        settings = bytemix.Settings(**dict(zip(GRID, values, strict=True)))
        started = time.perf_counter()
        bpb = score(recorded["val"], settings)
        seconds = round(time.perf_counter() - started, 1)
        tried.append({"settings": asdict(settings), "val": round(bpb, 5), "seconds": seconds})
        print(f"  val {settings}: {bpb:.4f}", flush=True)
    best = min(tried, key=lambda row: row["val"])
    chosen = bytemix.Settings(**best["settings"])
    results["tried_on_val"], results["chosen"] = tried, asdict(chosen)
    for text, rec in recorded.items():
        started = time.perf_counter()
        row = {"text": text, "bytes": int(rec["n_bytes"]),
               "token mixture": round(float(rec["token_nats"].sum() / math.log(2) / rec["n_bytes"]), 5),
               "token mixture, as decisions": round(as_decisions(rec), 5),
               "byte stage": round(score(rec, chosen), 5)}
        for without, bpb in ABLATIONS.items():
            row[f"byte stage without {without}"] = round(bpb(rec, chosen), 5)
        row["seconds"] = round(time.perf_counter() - started, 1)
        results["rows"].append(row)
        print(row, flush=True)
    atomic_write_json(ROOT / "benchmarks" / "results" / f"byte_mixing_{args.name}.json", results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
