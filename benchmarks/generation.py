"""Generation speed with and without the key-value cache, and in fp32 and bf16, for every trained size.

    .venv/bin/python benchmarks/generation.py [--out DIR] [--new-tokens 100]

Uses the models in DIR/models (the repository root by default) and greedy decoding, so that the
runs can be compared token for token: with and without the cache they must agree exactly; in bf16
we record where, if anywhere, the text first departs from fp32's. Writes
benchmarks/results/generation_<device>.json.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from junglegpt.environment import describe_hardware  # noqa: E402
from junglegpt.generation import ModelShelf, Request, prepare  # noqa: E402
from junglegpt.io import atomic_write_json  # noqa: E402
from junglegpt.paths import OutputDirs  # noqa: E402


def tokens_per_s(model, prepared, use_cache: bool, bf16: bool = False, repeats: int = 3) -> tuple[float, torch.Tensor]:
    best, output = float("inf"), None
    for _ in range(repeats):
        start = time.perf_counter()
        with torch.no_grad(), torch.autocast(model.device.type, dtype=torch.bfloat16, enabled=bf16):
            output = model.generate(prepared.input_ids.to(model.device), **{**prepared.generate_kwargs,
                                                                            "use_cache": use_cache})
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - start)
    return prepared.generate_kwargs["max_new_tokens"] / best, output


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default=str(ROOT))
    parser.add_argument("--new-tokens", type=int, default=100)
    args = parser.parse_args()
    shelf = ModelShelf(OutputDirs(args.out))
    rows = []
    for size in shelf.available():
        model, tokenizer = shelf.get(size)
        request = Request(prompt="Deep in the jungle, Mowgli", size=size, max_new_tokens=args.new_tokens, temperature=0)
        prepared = prepare(request, tokenizer, model.config.n_positions)
        prepared.generate_kwargs["min_new_tokens"] = args.new_tokens  # the same length in both runs
        with_cache, out_a = tokens_per_s(model, prepared, use_cache=True)
        without_cache, out_b = tokens_per_s(model, prepared, use_cache=False)
        bf16, out_c = tokens_per_s(model, prepared, use_cache=True, bf16=True)
        differs = (out_a[0] != out_c[0]).nonzero()
        prompt_length = prepared.input_ids.shape[1]
        row = {"size": size, "tokens_per_s_with_cache": round(with_cache, 1),
               "tokens_per_s_without_cache": round(without_cache, 1), "speed_up": round(with_cache / without_cache, 2),
               "same_tokens": bool(torch.equal(out_a, out_b)),
               "bf16_tokens_per_s_with_cache": round(bf16, 1), "bf16_speed_up": round(bf16 / with_cache, 2),
               "bf16_same_tokens": bool(torch.equal(out_a, out_c)),
               "bf16_first_different_token": int(differs[0]) - prompt_length if len(differs) else None}
        rows.append(row)
        print(json.dumps(row), flush=True)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    result = {"hardware": describe_hardware(), "new_tokens": args.new_tokens, "decoding": "greedy",
              "measured": time.strftime("%Y-%m-%d"), "rows": rows}
    path = atomic_write_json(ROOT / "benchmarks" / "results" / f"generation_{device}.json", result)
    print(f"written to {path}")


if __name__ == "__main__":
    main()
