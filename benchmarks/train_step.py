"""Training-step throughput: notebook 03's step in fp32, in bf16 and in what precision="auto" picks, against bare loops.

    .venv/bin/python benchmarks/train_step.py                 # sizes 1M, 15M, 37M, quick-profile batch
    .venv/bin/python benchmarks/train_step.py --sizes all     # every size (slow on a CPU)
    .venv/bin/python benchmarks/train_step.py --compile       # also torch.compile: compile time and speed-up
    .venv/bin/python benchmarks/train_step.py --precision-cost --sizes 1M,100M  # what choosing "auto" costs

The notebook's step is `junglegpt.training.train_step`, which notebook 03 calls; it runs here with an
Accelerator and AdamW built as the notebook builds them. On a CPU it runs in fp32 and in bf16, and
the precision "auto" picks is found as notebook 03 finds it (`training.choose_precision` with
`training.measure_cpu_precisions`: on a CPU with bf16 instructions it times both, once per machine,
on the first size of the run, or on 15M where that is bigger), so each row says whether that one
choice was the faster of the two for its size: the rows show whether the verdict holds across sizes.
`--precision-cost` measures instead what the choice costs: timing each size itself (notebook 03
before issue 34) against the measurement it makes now. On a GPU (one mixed precision per process) the
notebook's step runs in the precision "auto" picks. The bare loops are forward, backward, clip,
AdamW step, nothing else, in fp32 and under bf16 autocast. All run in this one process, alternating,
so that machine noise hits them alike; the ratios are the figures that matter. On CUDA it also
reports model FLOPs utilisation and peak memory. Where the CPU has no bf16 instructions, bf16 is
emulated and 10-20x slower: it is timed once (--bf16-repeats) so that the run stays short.

Results are written to benchmarks/results/train_step_<device>.json (and train_step_compile_<device>.json);
on a CPU the name also says which CPU, e.g. train_step_cpu-amd-epyc-no-bf16.json, so that the
figures of different machines sit side by side.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
import time
from pathlib import Path

import torch
from accelerate import Accelerator
from transformers import GPT2LMHeadModel

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from junglegpt import training  # noqa: E402
from junglegpt.environment import cpu_flags, cpu_model, describe_hardware  # noqa: E402
from junglegpt.io import atomic_write_json  # noqa: E402
from junglegpt.sizes import DEFAULT_VOCAB_SIZE, SIZES, parse_sizes  # noqa: E402

# Dense peak throughput in the precision the notebook uses on each GPU (TFLOP/s), for MFU.
PEAK_TFLOPS = {"T4": 65.0, "A100": 312.0, "H100": 989.0, "H200": 989.0, "L4": 121.0, "A10": 125.0, "V100": 125.0}


def build_model(name: str, device) -> GPT2LMHeadModel:
    return training.untrained_model(name, device=device)


def cpu_facts() -> dict:
    """The CPU's model and the instruction sets that decide bf16 speed."""
    flags = cpu_flags()
    wanted = ("avx2", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile")
    return {"model": cpu_model(), "bf16_in_hardware": training.cpu_supports_bf16(), **{f: f in flags for f in wanted}}


def cpu_tag() -> str:
    """A file-name tag for this CPU: its model and what it has for bf16, e.g. 'intel-xeon-processor-amx'."""
    flags = cpu_flags()
    kind = "amx" if "amx_tile" in flags else "avx512bf16" if "avx512_bf16" in flags else "no-bf16"
    words = re.sub(r"\(r\)|\(tm\)|cpu|@.*", "", (cpu_model() or "unknown").lower())
    return "-".join(re.findall(r"[a-z0-9]+", words) + [kind])


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


def bare_step(name: str, batch: torch.Tensor, bf16: bool = False):
    """Forward, backward, clip, AdamW: nothing else, in fp32 (or the forward under bf16 autocast)."""
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    model = build_model(name, device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4, betas=(0.9, 0.95), fused=torch.cuda.is_available())

    def step():
        x = batch.to(device)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            loss = model(input_ids=x, labels=x).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    return step


def bench_size(name: str, batch_size: int, block_size: int, repeats: int, bf16_repeats: int,
               auto_measure) -> dict:
    batch = torch.randint(0, DEFAULT_VOCAB_SIZE, (batch_size, block_size))
    cuda = torch.cuda.is_available()
    # The choice notebook 03 makes: on a CPU with bf16 instructions, measured once for every size.
    auto, why = training.choose_precision("auto", measure=auto_measure)
    # Accelerate allows one mixed precision per process, so on a GPU the notebook's step runs in its
    # own precision only, against the bare fp32 loop; on a CPU (Accelerate's "no" either way) both.
    steps = {"bare_fp32": bare_step(name, batch)}
    if not cuda:
        steps["bare_bf16"] = bare_step(name, batch, bf16=True)
    for precision in [auto] if cuda else ["fp32", "bf16"]:
        steps[f"notebook_{precision}"] = notebook_step(name, batch, precision)
    for step in steps.values():
        time_steps(step, 1)  # warm-up
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    times = {key: [] for key in steps}
    for round_ in range(repeats):  # alternate, so that noise hits all alike
        for key, step in steps.items():
            if "bf16" not in key or cuda or round_ < bf16_repeats:
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
    chosen = statistics.median(times[f"notebook_{auto}"])
    row.update(auto_precision=auto, auto_why=why, threads=torch.get_num_threads())
    if not cuda:  # was "auto"'s choice the faster of the notebook's two steps?
        faster = min(statistics.median(times["notebook_fp32"]), statistics.median(times["notebook_bf16"]))
        row["auto_vs_faster"] = round(faster / chosen, 3)
        row["auto_was_faster"] = row["auto_vs_faster"] >= 0.97
    fastest = chosen
    row["achieved_tflops"] = round(flops / fastest / 1e12, 3)
    if torch.cuda.is_available():
        gpu = torch.cuda.get_device_name()
        peak = next((v for k, v in PEAK_TFLOPS.items() if k in gpu), None)
        row["mfu"] = round(flops / fastest / 1e12 / peak, 3) if peak else None
        row["peak_memory_mb"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
    return row


def bench_compile(name: str, batch_size: int, block_size: int, repeats: int, budget_s: float,
                  precision: str | None = None) -> dict:
    """torch.compile on the bare step in `precision` (default: the flags' choice, fp32 on a CPU): what
    compiling costs and what it saves."""
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    precision = precision or training.choose_precision()[0]
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision)
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
    return {"size": name, "precision": precision, "eager_step_s": round(eager, 4),
            "compiled_step_s": round(compiled, 4), "speed_up": round(eager / compiled, 3),
            "compile_s": round(compile_s, 1), "breakeven_steps": breakeven and round(breakeven, 1),
            "steps_in_budget_eager": int(budget_s / eager),
            # more steps in the budget with compiling than without?
            "pays_within_budget": (budget_s - compile_s) / compiled > budget_s / eager}


def bench_precision_cost(name: str, batch_size: int, block_size: int) -> list[dict]:
    """What choosing "auto" costs for this size: timing this size itself, median of three (notebook 03
    before issue 34), against the measurement notebook 03 makes now (`training.measure_cpu_precisions`
    on `training.precision_timing_size`, stopping once the winner is clear), one after the other."""
    batch = torch.randint(0, DEFAULT_VOCAB_SIZE, (batch_size, block_size))
    rows = []
    for method in ("this size, median of 3", "now"):
        start = time.perf_counter()
        if method == "now":
            measured = training.measure_cpu_precisions(training.precision_timing_size(name), (batch_size, block_size))
            fp32_s, bf16_s, timed = measured["fp32_step_s"], measured["bf16_step_s"], measured["measured_on"]
        else:
            fp32_s, bf16_s = training.time_cpu_precisions(build_model(name, "cpu"), batch, clear_speed_up=None)
            timed = f"{name}, {batch_size} x {block_size} tokens"
        cost_s = round(time.perf_counter() - start, 2)
        rows.append({"size": name, "method": method, "timed": timed, "cost_s": cost_s,
                     "fp32_step_s": round(fp32_s, 4), "bf16_step_s": round(bf16_s, 4),
                     "bf16_speed_up": round(fp32_s / bf16_s, 3),
                     "verdict": training.decide_cpu_precision(fp32_s, bf16_s)[0]})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="1M,15M,37M")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--block-size", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--bf16-repeats", type=int, help="timed bf16 steps per size on a CPU (default: --repeats "
                        "where the CPU has bf16 instructions, else 1: emulated bf16 is very slow)")
    parser.add_argument("--note", default="", help="conditions worth recording, e.g. other jobs sharing the machine")
    parser.add_argument("--compile", action="store_true", help="measure torch.compile instead")
    parser.add_argument("--budget-s", type=float, default=60.0, help="with --compile: the quick profile's budget")
    parser.add_argument("--precision", choices=("fp32", "bf16", "fp16"),
                        help="with --compile: the precision to time in (default: fp32 on a CPU); notebook 03 "
                             "trains in what 'auto' measured faster, bf16 on a CPU with AMX")
    parser.add_argument("--precision-cost", action="store_true", help="measure what choosing \"auto\" costs instead")
    args = parser.parse_args()
    print(training.use_physical_cores(), flush=True)  # as notebook 03 does
    device = "cuda" if torch.cuda.is_available() else "cpu"
    sizes = parse_sizes(args.sizes)
    auto = {}  # measured once, on the first size (or 15M where that is bigger), as a run of notebook 03 does

    def auto_measure():
        if not auto:
            auto.update(training.measure_cpu_precisions(training.precision_timing_size(sizes[0]),
                                                        (args.batch_size, args.block_size)))
        return auto["fp32_step_s"], auto["bf16_step_s"]

    rows = []
    for name in sizes:
        if args.compile:
            new_rows = [bench_compile(name, args.batch_size, args.block_size, args.repeats, args.budget_s,
                                      args.precision)]
        elif args.precision_cost:
            new_rows = bench_precision_cost(name, args.batch_size, args.block_size)
        else:
            bf16_repeats = args.bf16_repeats or (args.repeats if training.cpu_supports_bf16() else 1)
            new_rows = [bench_size(name, args.batch_size, args.block_size, args.repeats, bf16_repeats, auto_measure)]
            new_rows[0]["auto_measured_on"] = auto.get("measured_on")
        for row in new_rows:
            rows.append(row)
            print(json.dumps(row), flush=True)
    result = {
        "hardware": describe_hardware(),
        "cpu": cpu_facts(),
        "batch": f"{args.batch_size} x {args.block_size} tokens",
        "repeats": args.repeats,
        "measured": time.strftime("%Y-%m-%d"),
        "note": args.note,
        "threads": torch.get_num_threads(),
        "rows": rows,
    }
    device = f"cpu-{cpu_tag()}" if device == "cpu" else device
    kind = "_compile" if args.compile else "_precision_cost" if args.precision_cost else ""
    shape = "" if (args.batch_size, args.block_size) == (16, 128) else f"_{args.batch_size}x{args.block_size}"
    name = f"train_step{kind}_{device}{shape}.json"
    path = atomic_write_json(ROOT / "benchmarks" / "results" / name, result)
    print(f"written to {path}")


if __name__ == "__main__":
    main()
