"""The model card (README.md) of a trained size, built from its measured metrics with huggingface_hub."""

from __future__ import annotations

from pathlib import Path

from huggingface_hub import EvalResult, ModelCard, ModelCardData

from . import REPO_URL

REQUIRED_METADATA = ("language", "license", "library_name", "pipeline_tag", "model_name")
VALIDATION = "The Jungle Book (validation slice)"
HELDOUT = "The Second Jungle Book"

BODY = """
{warning}# JungleGPT {name}

A GPT-2 {origin} on {trained_on}, by the [JungleGPT notebooks]({series_url}) (`03_train.ipynb`). The
tokenizer it was trained with is in this repository too: load both with `from_pretrained`.

| | |
|---|---|
| parameters | {n_params:,} ({n_layer} layers, width {n_embd}, {n_head} heads, {n_positions} positions) |
| tokenizer | {tokenizer} |
| data | {train_tokens} training tokens; validation: a ~10% slice of every Jungle Book story, never trained on |
| best validation loss | {best_val_loss:.3f} nats/token, **{best_val_bpb:.3f} bits per byte** (step {best_step}) |
| training loss at that step | {train_loss_at_best:.3f} nats/token |
| held-out book (The Second Jungle Book) | {heldout} |
| training | {steps_done} steps ({epochs_done} epochs), {train_time_s:.0f} s, {train_tokens_per_s:,.0f} tokens/s, \
stopped by {stopped_because} |
| run | profile `{profile}` ({label}), seed {seed}, on {hardware} |

## Intended use and limitations

For teaching and experiments about model size and small data. The model has read very little
text: it writes Kipling-flavoured prose that is often ungrammatical, and larger sizes copy passages
from their training text verbatim. It knows little else about the world and is not fit for any
real application.
"""


def build_model_card(metrics: dict, heldout_bpb: float | None = None, series_url: str = REPO_URL) -> ModelCard:
    """The card of one trained size. A size trained in the smoke or quick profile says so first."""
    m = metrics
    run = m.get("run_name") or m["model_size"]  # "15M"; "finetuned/gpt2" (notebook 06); "more-data/15M" (07)
    name = f"junglegpt-{run.replace('/', '-')}"
    if m.get("init_from"):
        origin, tag = f"**fine-tuned** from `{m['init_from']}`", "fine-tuned"
        tokenizer = f"the pretrained model's ({m['config']['vocab_size']:,} tokens)"
    else:
        origin, tag = "trained **from scratch**", "from-scratch"
        tokenizer = f"byte-level BPE, {m['config']['vocab_size']:,} tokens, fitted on the Jungle Book training text"
    if m.get("train_file"):
        trained_on = (f"Rudyard Kipling's *The Jungle Book* (Project Gutenberg #236) and more (`{m['train_file']}`: "
                      "23 other Kipling books, less every passage that overlaps the evaluation texts)")
    else:
        trained_on = "Rudyard Kipling's *The Jungle Book* (Project Gutenberg #236)"

    def bpb_result(dataset_id: str, dataset: str, value: float) -> EvalResult:
        # huggingface_hub groups results by dataset type: each text needs its own.
        return EvalResult(task_type="text-generation", dataset_type=dataset_id, dataset_name=dataset,
                          metric_type="bits_per_byte", metric_value=round(value, 4))

    results = [bpb_result("jungle-book-validation", VALIDATION, m["best_val_bpb"])]
    if heldout_bpb is not None:
        results.append(bpb_result("second-jungle-book", HELDOUT, heldout_bpb))
    data = ModelCardData(language="en", license="mit", library_name="transformers", pipeline_tag="text-generation",
                         model_name=name, tags=["gpt2", "junglegpt", tag], eval_results=results)
    warning = "" if m["profile"] == "full" else (
        f"> **A {m['profile']}-profile model, not the experiment:** {m['steps_done']} training steps "
        f"({m['train_time_s']:.0f} s) to test the notebooks, where the full profile trains to early stopping.\n\n")
    body = BODY.format(
        warning=warning, series_url=series_url, name=run, origin=origin, trained_on=trained_on, tokenizer=tokenizer,
        train_tokens=f"{m['train_tokens']:,}" if "train_tokens" in m else "the",
        **m["config"], **{k: m[k] for k in (
            "n_params", "best_val_loss", "best_val_bpb", "best_step", "train_loss_at_best", "steps_done",
            "epochs_done", "train_time_s", "train_tokens_per_s", "stopped_because", "profile", "label", "seed",
            "hardware")},
        heldout="not measured yet (notebook 04)" if heldout_bpb is None else f"{heldout_bpb:.3f} bits per byte",
    )
    return ModelCard(f"---\n{data.to_yaml()}\n---\n{body}")


def check_model_card(readme: str | Path, metrics: dict) -> list[str]:
    """Validate a card offline: its metadata parses, has the required fields, and states the measured numbers."""
    card = ModelCard.load(readme)
    problems = [f"metadata field '{key}' is missing" for key in REQUIRED_METADATA if not getattr(card.data, key, None)]
    values = {r.dataset_name: r.metric_value for r in (card.data.eval_results or [])}
    stated = values.get(VALIDATION)
    if stated is None or abs(stated - metrics["best_val_bpb"]) > 1e-3:
        problems.append(f"validation bits per byte in the card ({stated}) differs from metrics.json "
                        f"({metrics['best_val_bpb']:.4f})")
    return problems
