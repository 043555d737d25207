"""The network mixed with count models (junglegpt.mixture), on whole texts, against PPMd and zpaq.

    .venv/bin/python benchmarks/mixture.py --out OUT [--sizes 1M] [--name full-cpu]

For each size of the run in OUT (a full-profile run: notebook 04's protocol on whole texts):

1. the network's nats for every token of each text, frozen and learning while it reads, at the
   learning rate notebook 04's rule picks (`dynamic.choose_lr`, on text that is not reported);
2. the mixture's settings chosen by the same rule (`mixture.choose_settings`): for validation on
   the last tenth of the training text (the counts then primed on the first nine tenths), for the
   held-out book on validation (primed on the training text);
3. every text scored by the parts alone, by the counts and match model without the network, by
   the network with the counts only, and by all three; and PPMd (notebook 04's order) and
   zpaq -m5 on the same bytes, both primed with the training text.

Nothing reported is looked at before its settings are fixed. Each finished size is written at once
to benchmarks/results/mixture_<name>.json, with the machine and the seconds; a rerun skips it.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from transformers import AutoModelForCausalLM, AutoTokenizer  # noqa: E402

from junglegpt import baselines, dynamic, mixture  # noqa: E402
from junglegpt import data as jb  # noqa: E402
from junglegpt.environment import describe_hardware  # noqa: E402
from junglegpt.io import atomic_write_json, read_json  # noqa: E402
from junglegpt.metrics import bits_per_byte  # noqa: E402
from junglegpt.paths import OutputDirs  # noqa: E402
from junglegpt.sizes import parse_sizes  # noqa: E402

PPMD_ORDER = 10  # the order notebook 04's rule chose on the training text's last tenth (results/full-cpu)
# what each row mixes: the parts alone come with every row (Scored.part_nats)
COMBINATIONS = {"counts + match": ("counts", "match"), "network + counts": ("network", "counts"),
                "mixture": mixture.PARTS}


def texts(out: OutputDirs, tokenizer) -> dict:
    train, val = (p.read_text(encoding="utf-8") for p in (out.train_txt, out.val_txt))
    ids = {name: torch.tensor(tokenizer.encode(text)) for name, text in
           (("train", train), ("val", val), ("heldout", jb.load_heldout(out.raw)))}
    ids["tenth"] = ids["train"][-len(ids["train"]) // 10 :]
    ids["nine_tenths"] = ids["train"][: len(ids["train"]) - len(ids["tenth"])]
    return ids


def n_bytes(tokenizer, ids) -> int:
    return len(tokenizer.decode(ids).encode("utf-8"))


def one_size(out: OutputDirs, size: str, tokenizer, ids: dict) -> dict:
    started = time.perf_counter()
    model = AutoModelForCausalLM.from_pretrained(out.model(size))
    eos = tokenizer.eos_token_id
    train_bytes = tokenizer.decode(ids["train"]).encode("utf-8")
    rows = []
    for split, tune, prime_tune in (("val", "tenth", "nine_tenths"), ("heldout", "val", "train")):
        tune_bytes, split_bytes = n_bytes(tokenizer, ids[tune]), n_bytes(tokenizer, ids[split])
        lr, _ = dynamic.choose_lr(model, ids[tune], tune_bytes, eos)
        text_bytes = tokenizer.decode(ids[split]).encode("utf-8")
        row = {"text": split, "lr": lr, "tokens": len(ids[split]), "bytes": split_bytes,
               "ppmd_bpb": baselines.ppmd_bpb(train_bytes, text_bytes, PPMD_ORDER),
               "zpaq_bpb": baselines.zpaq_bpb(train_bytes, text_bytes)}
        for kind, rate in (("frozen", 0.0), ("learning", lr)):
            tune_nats, nats = (torch.cat(dynamic.token_nats(model, ids[t], eos, rate)).numpy() for t in (tune, split))
            row[f"network_{kind}_bpb"] = bits_per_byte(float(nats.sum()), split_bytes)
            for label, parts in COMBINATIONS.items():
                if "network" not in parts and kind == "learning":
                    continue  # the same as frozen: the network takes no part
                settings, tried = mixture.choose_settings(ids[prime_tune], ids[tune], tune_nats, tune_bytes,
                                                          parts=parts)
                scored = mixture.score(ids["train"], ids[split], nats, settings, parts=parts)
                key = label if "network" not in parts else f"{label}, network {kind}"
                row[key] = {"bpb": scored.bits_per_byte(split_bytes), "settings": settings.__dict__,
                            "tuning_bpb": min(tried.values()),
                            **{f"{part}_alone_bpb": scored.bits_per_byte(split_bytes, part) for part in parts}}
                print(f"  {size} {split:8s} {key:32s} {row[key]['bpb']:.4f}", flush=True)
        rows.append(row)
    return {"size": size, "rows": rows, "seconds": round(time.perf_counter() - started, 1)}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, type=Path, help="a run's output folder (models/, data/, tokenizer/)")
    parser.add_argument("--sizes", default="1M")
    parser.add_argument("--name", default="full-cpu", help="results go to benchmarks/results/mixture_<name>.json")
    args = parser.parse_args(argv)
    out = OutputDirs(args.out)
    record_path = ROOT / "benchmarks" / "results" / f"mixture_{args.name}.json"
    record = read_json(record_path) if record_path.exists() else {"sizes": {}}
    record.update({"machine": describe_hardware(), "grid": [s.__dict__ for s in mixture.GRID],
                   "protocol": __doc__.split("\n\n", 2)[2].split("\n\nNothing")[0]})
    tokenizer = AutoTokenizer.from_pretrained(out.tokenizer)
    ids = texts(out, tokenizer)
    for size in parse_sizes(args.sizes):
        if size in record["sizes"]:
            print(f"{size}: in {record_path} already")
            continue
        record["sizes"][size] = one_size(out, size, tokenizer, ids)
        atomic_write_json(record_path, record)
    print(f"wrote {record_path}")


if __name__ == "__main__":
    main()
