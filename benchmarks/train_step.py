"""Training-step throughput: notebook 03's step, in fp32 and in its default precision, against a bare fp32 loop.

    .venv/bin/python benchmarks/train_step.py                 # sizes 1M, 15M, 37M, quick-profile batch
    .venv/bin/python benchmarks/train_step.py --sizes all     # every size (slow on a CPU)
    .venv/bin/python benchmarks/train_step.py --compile       # also torch.compile: compile time and speed-up

The notebook's step is `junglegpt.training.train_step`, which notebook 03 calls; it runs here with an
Accelerator and AdamW built as the notebook builds them, once in fp32 and once in the precision
`training.choose_precision()` picks here (bf16 on a CPU with bf16 instructions, bf16 or fp16 on a
GPU). The bare loop is forward, backward, clip, AdamW step in fp32, nothing else. All run in this
one process, alternating, so that machine noise hits them alike; the ratios are the figures that
matter. On CUDA it also reports model FLOPs utilisation and peak memory.

Results are written to benchmarks/results/train_step_<device>.json (and train_step_compile_<device>.json).
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
from transformers import GPT2Config, GPT2LMHeadModel

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from junglegpt import training  # noqa: E402
from junglegpt.environment import cpu_flags, cpu_model, describe_hardware  # noqa: E402
from junglegpt.io import atomic_write_json  # noqa: E402
from junglegpt.sizes import DEFAULT_VOCAB_SIZE, N_POSITIONS, SIZES, parse_sizes  # noqa: E402

# Dense peak throughput in the precision the notebook uses on each GPU (TFLOP/s), for MFU.
PEAK_TFLOPS = {"T4": 65.0, "A100": 312.0, "H100": 989.0, "H200": 989.0, "L4": 121.0, "A10": 125.0, "V100": 125.0}


def build_model(name: str, device) -> GPT2LMHeadModel:
    s = SIZES[name]
    config = GPT2Config(vocab_size=DEFAULT_VOCAB_SIZE, n_positions=N_POSITIONS, n_embd=s.n_embd, n_layer=s.n_layer,
                        n_head=s.n_head, resid_pdrop=0.1, embd_pdrop=0.1, attn_pdrop=0.1, attn_implementation="sdpa",
                        bos_token_id=0, eos_token_id=0)
    torch.manual_seed(0)
    return GPT2LMHeadModel(config).to(device)


def cpu_facts() -> dict:
    """The CPU's model and the instruction sets that decide bf16 speed."""
    flags = cpu_flags()
    wanted = ("avx2", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile")
    return {"model": cpu_model(), "bf16_in_hardware": training.cpu_supports_bf16(), **{f: f in flags for f in wanted}}


def time_steps(step, n: int) -> list[float]:
    times = []
    for _ in range(n):
        start = time.perf_counter()
        step()
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return times


def notebook_step(name: str, batch: torch.Tensor, precision: str):
    """Notebook 03's training step (`training.train_step`) for a fresh model of this size, built as the
    notebook builds it: an Accelerator in `precision`, AdamW with fused kernels on a GPU."""
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    accelerator = Accelerator(mixed_precision=training.accelerate_mixed_precision(precision))
    model = build_model(name, device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4, betas=(0.9, 0.95), fused=torch.cuda.is_available())
    model, optimizer = accelerator.prepare(model, optimizer)
    cpu_bf16 = precision == "bf16" and device.type == "cpu"
    return lambda: training.train_step(accelerator, model, optimizer, batch, len(batch), 1e-4, 1.0, cpu_bf16)


def bare_fp32_step(name: str, batch: torch.Tensor):
    """Forward, backward, clip, AdamW: nothing else, in fp32."""
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    model = build_model(name, device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4, betas=(0.9, 0.95), fused=torch.cuda.is_available())

    def step():
        x = batch.to(device)
        loss = model(input_ids=x, labels=x).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    return step


def bench_size(name: str, batch_size: int, block_size: int, repeats: int) -> dict:
    batch = torch.randint(0, DEFAULT_VOCAB_SIZE, (batch_size, block_size))
    fast = training.choose_precision()
    # Accelerate allows one mixed precision per process, so on a GPU the notebook's step runs in its
    # own precision only, against the bare fp32 loop; on a CPU (Accelerate's "no" either way) both.
    precisions = [fast] if torch.cuda.is_available() else list(dict.fromkeys(["fp32", fast]))
    steps = {"bare_fp32": bare_fp32_step(name, batch)}
    for precision in precisions:
        steps[f"notebook_{precision}"] = notebook_step(name, batch, precision)
    for step in steps.values():
        time_steps(step, 1)  # warm-up
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
    times = {key: [] for key in steps}
    for _ in range(repeats):  # alternate, so that noise hits all alike
        for key, step in steps.items():
            times[key] += time_steps(step, 1)

    tokens = batch_size * block_size
    s = SIZES[name]
    n_params = s.n_params(DEFAULT_VOCAB_SIZE)
    flops = training.flops_per_token(n_params, s.n_layer, s.n_embd, block_size) * tokens
    row = {"size": name, "n_params": n_params}
    for key, values in times.items():
        seconds = statistics.median(values)
        row[f"{key}_step_s"] = round(seconds, 4)
        row[f"{key}_tokens_per_s"] = round(tokens / seconds, 1)
    bare = statistics.median(times["bare_fp32"])
    for key in times:
        if key != "bare_fp32":
            row[f"{key}_vs_bare_fp32"] = round(bare / statistics.median(times[key]), 3)
    fastest = statistics.median(times[f"notebook_{fast}"])
    row["notebook_precision"] = fast
    row["achieved_tflops"] = round(flops / fastest / 1e12, 3)
    if torch.cuda.is_available():
        gpu = torch.cuda.get_device_name()
        peak = next((v for k, v in PEAK_TFLOPS.items() if k in gpu), None)
        row["mfu"] = round(flops / fastest / 1e12 / peak, 3) if peak else None
        row["peak_memory_mb"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
    return row


def bench_compile(name: str, batch_size: int, block_size: int, repeats: int, budget_s: float) -> dict:
    """torch.compile on the bare step in the default precision: what compiling costs and what it saves."""
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(training.choose_precision())
    batch = torch.randint(0, DEFAULT_VOCAB_SIZE, (batch_size, block_size), device=device)
    models = {"eager": build_model(name, device)}
    models["compiled"] = torch.compile(build_model(name, device))
    optimizers = {k: torch.optim.AdamW(m.parameters(), lr=1e-4) for k, m in models.items()}

    def step(key):
        with torch.autocast(device.type, dtype=dtype or torch.float32, enabled=dtype is not None):
            loss = models[key](input_ids=batch, labels=batch).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(models[key].parameters(), 1.0)
        optimizers[key].step()
        optimizers[key].zero_grad(set_to_none=True)

    first = {key: time_steps(lambda k=key: step(k), 1)[0] for key in models}  # compiles on its first call
    times = {key: [] for key in models}
    for _ in range(repeats):
        for key in models:
            times[key] += time_steps(lambda k=key: step(k), 1)
    eager, compiled = statistics.median(times["eager"]), statistics.median(times["compiled"])
    compile_s = first["compiled"] - compiled
    saved_per_step = eager - compiled
    breakeven = compile_s / saved_per_step if saved_per_step > 0 else None
    return {"size": name, "precision": training.choose_precision(), "eager_step_s": round(eager, 4),
            "compiled_step_s": round(compiled, 4), "speed_up": round(eager / compiled, 3),
            "compile_s": round(compile_s, 1), "breakeven_steps": breakeven and round(breakeven, 1),
            "steps_in_budget_eager": int(budget_s / eager),
            # more steps in the budget with compiling than without?
            "pays_within_budget": (budget_s - compile_s) / compiled > budget_s / eager}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="1M,15M,37M")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--block-size", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--note", default="", help="conditions worth recording, e.g. other jobs sharing the machine")
    parser.add_argument("--compile", action="store_true", help="measure torch.compile instead")
    parser.add_argument("--budget-s", type=float, default=60.0, help="with --compile: the quick profile's budget")
    args = parser.parse_args()
    device = "cuda" if torch.cuda.is_available() else "cpu"
    rows = []
    for name in parse_sizes(args.sizes):
        if args.compile:
            row = bench_compile(name, args.batch_size, args.block_size, args.repeats, args.budget_s)
        else:
            row = bench_size(name, args.batch_size, args.block_size, args.repeats)
        rows.append(row)
        print(json.dumps(row), flush=True)
    result = {
        "hardware": describe_hardware(),
        "cpu": cpu_facts(),
        "batch": f"{args.batch_size} x {args.block_size} tokens",
        "repeats": args.repeats,
        "measured": time.strftime("%Y-%m-%d"),
        "note": args.note,
        "rows": rows,
    }
    name = f"train_step_compile_{device}.json" if args.compile else f"train_step_{device}.json"
    path = atomic_write_json(ROOT / "benchmarks" / "results" / name, result)
    print(f"written to {path}")


if __name__ == "__main__":
    main()
