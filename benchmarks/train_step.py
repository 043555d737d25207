"""Training-step throughput: notebook 03's step against a bare PyTorch loop, on the same model and batch.

    .venv/bin/python benchmarks/train_step.py                 # CPU: sizes 1M..15M, quick-profile batch
    .venv/bin/python benchmarks/train_step.py --sizes all     # every size (slow on a CPU)

The notebook's `train_step` is taken from notebooks/03_train.ipynb itself (the cell that defines
it) and run with an Accelerator, AdamW and the warm-up/cosine schedule, exactly as the notebook
builds them. The bare loop is forward, backward, clip, AdamW step, nothing else. Both run in this
one process, alternating, so that machine noise hits both alike; the ratio is the figure that
matters. On CUDA it also reports model FLOPs utilisation and peak memory.

Results are written to benchmarks/results/train_step_<device>.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch
from accelerate import Accelerator
from transformers import GPT2Config, GPT2LMHeadModel, get_cosine_schedule_with_warmup

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from junglegpt import training  # noqa: E402
from junglegpt.environment import describe_hardware  # noqa: E402
from junglegpt.io import atomic_write_json  # noqa: E402
from junglegpt.sizes import DEFAULT_VOCAB_SIZE, N_POSITIONS, SIZES, parse_sizes  # noqa: E402

# Dense peak throughput in the precision the notebook uses on each GPU (TFLOP/s), for MFU.
PEAK_TFLOPS = {"T4": 65.0, "A100": 312.0, "H100": 989.0, "H200": 989.0, "L4": 121.0, "A10": 125.0, "V100": 125.0}


def notebook_train_step_source() -> str:
    notebook = json.loads((ROOT / "notebooks" / "03_train.ipynb").read_text())
    for cell in notebook["cells"]:
        source = "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]
        if cell["cell_type"] == "code" and source.startswith("def train_step"):
            return source
    raise RuntimeError("no cell defining train_step in notebooks/03_train.ipynb")


def build_model(name: str, device) -> GPT2LMHeadModel:
    s = SIZES[name]
    config = GPT2Config(vocab_size=DEFAULT_VOCAB_SIZE, n_positions=N_POSITIONS, n_embd=s.n_embd, n_layer=s.n_layer,
                        n_head=s.n_head, resid_pdrop=0.1, embd_pdrop=0.1, attn_pdrop=0.1, attn_implementation="sdpa")
    torch.manual_seed(0)
    return GPT2LMHeadModel(config).to(device)


def time_steps(step, n: int) -> list[float]:
    times = []
    for _ in range(n):
        start = time.perf_counter()
        step()
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return times


def bench_size(name: str, batch_size: int, block_size: int, repeats: int) -> dict:
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    batch = torch.randint(0, DEFAULT_VOCAB_SIZE, (batch_size, block_size))

    # The notebook's step, with the objects the notebook builds.
    accelerator = Accelerator(mixed_precision=training.mixed_precision())
    model = build_model(name, device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4, betas=(0.9, 0.95), fused=torch.cuda.is_available())
    scheduler = get_cosine_schedule_with_warmup(optimizer, 10, 10_000)
    model, optimizer, scheduler = accelerator.prepare(model, optimizer, scheduler)
    namespace = {"accelerator": accelerator, "model": model, "optimizer": optimizer, "scheduler": scheduler,
                 "settings": {"batch_size": batch_size, "grad_clip": 1.0}, "batch_for_step": lambda step: batch}
    exec(notebook_train_step_source(), namespace)

    def notebook_step():
        namespace["train_step"](1, batch_size)

    # The bare loop, in the same precision.
    bare_model = build_model(name, device)
    bare_optimizer = torch.optim.AdamW(bare_model.parameters(), lr=1e-4, betas=(0.9, 0.95),
                                       fused=torch.cuda.is_available())
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(accelerator.mixed_precision)
    scaler = torch.amp.GradScaler(enabled=dtype == torch.float16)

    def bare_step():
        x = batch.to(device)
        with torch.autocast(device.type, dtype=dtype or torch.float32, enabled=dtype is not None):
            loss = bare_model(input_ids=x, labels=x).loss
        scaler.scale(loss).backward()
        scaler.unscale_(bare_optimizer)
        torch.nn.utils.clip_grad_norm_(bare_model.parameters(), 1.0)
        scaler.step(bare_optimizer)
        scaler.update()
        bare_optimizer.zero_grad(set_to_none=True)

    time_steps(notebook_step, 1)  # warm-up
    time_steps(bare_step, 1)
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
    notebook_times, bare_times = [], []
    for _ in range(repeats):  # alternate, so that noise hits both
        notebook_times += time_steps(notebook_step, 1)
        bare_times += time_steps(bare_step, 1)

    tokens = batch_size * block_size
    n_params = sum(p.numel() for p in bare_model.parameters())
    s = SIZES[name]
    flops = training.flops_per_token(n_params, s.n_layer, s.n_embd, block_size) * tokens
    notebook_s, bare_s = statistics.median(notebook_times), statistics.median(bare_times)
    row = {
        "size": name,
        "n_params": n_params,
        "notebook_step_s": round(notebook_s, 4),
        "bare_step_s": round(bare_s, 4),
        "notebook_tokens_per_s": round(tokens / notebook_s, 1),
        "bare_tokens_per_s": round(tokens / bare_s, 1),
        "notebook_vs_bare": round(bare_s / notebook_s, 3),
        "achieved_tflops": round(flops / notebook_s / 1e12, 3),
    }
    if torch.cuda.is_available():
        gpu = torch.cuda.get_device_name()
        peak = next((v for k, v in PEAK_TFLOPS.items() if k in gpu), None)
        row["mfu"] = round(flops / notebook_s / 1e12 / peak, 3) if peak else None
        row["peak_memory_mb"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="1M,3M,7M,15M")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--block-size", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--note", default="", help="conditions worth recording, e.g. other jobs sharing the machine")
    args = parser.parse_args()
    device = "cuda" if torch.cuda.is_available() else "cpu"
    rows = []
    for name in parse_sizes(args.sizes):
        row = bench_size(name, args.batch_size, args.block_size, args.repeats)
        rows.append(row)
        print(json.dumps(row), flush=True)
    result = {
        "hardware": describe_hardware(),
        "batch": f"{args.batch_size} x {args.block_size} tokens",
        "repeats": args.repeats,
        "measured": time.strftime("%Y-%m-%d"),
        "note": args.note,
        "rows": rows,
    }
    path = atomic_write_json(ROOT / "benchmarks" / "results" / f"train_step_{device}.json", result)
    print(f"written to {path}")


if __name__ == "__main__":
    main()
