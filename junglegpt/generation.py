"""Generating text from the trained sizes: input checks, a streamer, and the workshop playground.

The notebook (05_generate.ipynb) shows the core calls; this module holds what makes them safe to
hand to a room of people typing into boxes: every odd input gets an explanation instead of a
traceback, and the interface keeps working.
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import asdict, dataclass, field, replace

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, StoppingCriteria, StoppingCriteriaList, TextStreamer

from .paths import OutputDirs
from .sizes import SIZES, UnknownSizeError, get_size

MAX_TEMPERATURE = 5.0


class GenerationInputError(ValueError):
    """An input the interface refuses, with a message for the person who typed it."""


@dataclass
class Request:
    prompt: str = "Deep in the jungle, Mowgli"
    size: str = "15M"
    max_new_tokens: int = 80
    temperature: float = 0.8
    top_k: int = 50
    top_p: float = 0.95
    seed: int = 1894


@dataclass
class Prepared:
    input_ids: torch.Tensor
    generate_kwargs: dict
    notes: list[str] = field(default_factory=list)


class ModelShelf:
    """The trained sizes in OUT/models, loaded on first use and kept."""

    def __init__(self, out: OutputDirs, device: str | torch.device | None = None):
        self.out = out
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self._loaded: dict[str, tuple] = {}

    def available(self) -> list[str]:
        return [name for name in SIZES if (self.out.model(name) / "config.json").exists()]

    def is_loaded(self, size: str) -> bool:
        return size in self._loaded

    def get(self, size: str):
        try:
            size = get_size(size).name  # "1m" is 1M; "2M" is no size at all
        except UnknownSizeError as err:
            raise GenerationInputError(str(err)) from None
        if size not in self._loaded:
            folder = self.out.model(size)
            if not (folder / "config.json").exists():
                trained = ", ".join(self.available()) or "none yet"
                raise GenerationInputError(
                    f"The {size} model has not been trained yet (trained: {trained}). Run 03_train.ipynb with "
                    f"model_size=\"{size}\", or ./run_all.sh --sizes {size}."
                )
            model = AutoModelForCausalLM.from_pretrained(folder).to(self.device).eval()
            self._loaded[size] = (model, AutoTokenizer.from_pretrained(folder))
        return self._loaded[size]


def checked_numbers(request: Request) -> Request:
    """The request with its numbers as numbers ("0.8" from a text box is 0.8), or a message saying which is wrong."""
    kinds = {"max_new_tokens": int, "temperature": float, "top_k": int, "top_p": float, "seed": int}
    values = {}
    for name, kind in kinds.items():
        value = getattr(request, name)
        try:
            number = kind(value)
        except (TypeError, ValueError):
            raise GenerationInputError(f"{name}={value!r} is not a number.") from None
        if kind is float and not math.isfinite(number):
            raise GenerationInputError(f"{name}={value!r}: give a finite number.")
        if kind is int and float(value) != number:
            raise GenerationInputError(f"{name}={value!r}: give a whole number.")
        values[name] = number
    if not 0 <= values["seed"] < 2**63:
        raise GenerationInputError(f"seed={request.seed}: choose a whole number from 0 to 2**63 - 1.")
    return replace(request, **values)


def checked(request: Request) -> Request:
    """The request with every setting checked (numbers, and each in its range), or a
    GenerationInputError whose message says which setting is wrong and what would do."""
    request = checked_numbers(request)
    if not isinstance(request.prompt, str):
        raise GenerationInputError(f"prompt={request.prompt!r}: give the prompt as text, e.g. \"Deep in the jungle\"")
    if not 1 <= int(request.max_new_tokens) <= 1000:
        raise GenerationInputError(f"max_new_tokens={request.max_new_tokens}: choose between 1 and 1000.")
    if not 0 < request.top_p <= 1:
        raise GenerationInputError(f"top_p={request.top_p}: must be in (0, 1]; 1 keeps every token, 0.9 the "
                                   "most likely tokens that make up 90% of the probability.")
    if request.top_k < 0:
        raise GenerationInputError(f"top_k={request.top_k}: must be 0 (no limit) or more.")
    if request.temperature > MAX_TEMPERATURE:
        raise GenerationInputError(f"temperature={request.temperature}: above {MAX_TEMPERATURE} the text is noise; "
                                   "try 0.5 to 1.2 (0 or below means greedy).")
    return request


def prepare(request: Request, tokenizer, context: int) -> Prepared:
    """Check a request and turn it into model inputs and `generate` arguments, with notes for the user:
    an empty prompt starts from <|endoftext|>, and a prompt too long for the context keeps its end."""
    notes = []
    request = checked(request)
    sampling = request.temperature > 0
    if not sampling:
        notes.append(f"temperature={request.temperature} ≤ 0: greedy decoding (always the most likely token); "
                     "top-k, top-p and the seed do not matter.")

    ids = tokenizer.encode(request.prompt, verbose=False) if request.prompt else []
    if tokenizer.eos_token_id in ids:
        # Kept, not refused: it is the token every training text starts from, and a prompt may well
        # mean "a new text starts here". But the text shown leaves special tokens out, so
        # "Mowgli<|endoftext|>Baloo" would come back as "MowgliBaloo" without a word.
        notes.append(f"The prompt holds {tokenizer.eos_token}, the marker between texts: the model reads what "
                     "follows it as the start of a new text, and the text shown leaves the marker out.")
    if not ids:
        notes.append("The prompt is empty: the model starts from <|endoftext|>, the start of a text.")
        ids = [tokenizer.eos_token_id]
    room = context - int(request.max_new_tokens)
    if room < 1:
        raise GenerationInputError(f"max_new_tokens={request.max_new_tokens} leaves no room for the prompt in "
                                   f"the model's {context}-token context: ask for fewer.")
    if len(ids) > room:
        notes.append(f"The prompt is {len(ids)} tokens; with {request.max_new_tokens} new tokens only the last "
                     f"{room} fit in the {context}-token context, so the start was cut off.")
        ids = ids[-room:]
    kwargs = {"max_new_tokens": int(request.max_new_tokens), "do_sample": sampling, "use_cache": True,
              "pad_token_id": tokenizer.eos_token_id}
    if sampling:
        kwargs.update(temperature=float(request.temperature), top_k=int(request.top_k), top_p=float(request.top_p))
    else:  # say so explicitly, so that the model's generation_config does not turn sampling back on
        kwargs.update(temperature=None, top_k=None, top_p=None)
    return Prepared(torch.tensor([ids]), kwargs, notes)


class CallbackStreamer(TextStreamer):
    """transformers' TextStreamer, sending each finished piece of text to `on_text` instead of print."""

    def __init__(self, tokenizer, on_text):
        super().__init__(tokenizer, skip_prompt=True, skip_special_tokens=True)
        self.on_text = on_text

    def on_finalized_text(self, text: str, stream_end: bool = False):
        if text:
            self.on_text(text)


class StopWhenSet(StoppingCriteria):
    """Ends `generate` at the next token once `event` is set (the playground's Stop button)."""

    def __init__(self, event: threading.Event):
        self.event = event

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor, **kwargs) -> torch.BoolTensor:
        return torch.full((input_ids.shape[0],), self.event.is_set(), dtype=torch.bool, device=input_ids.device)


def generate(shelf: ModelShelf, request: Request, on_text=None, use_cache: bool = True,
             stop: threading.Event | None = None) -> dict:
    """Generate a continuation; `on_text` receives the text as it is produced; setting `stop` ends it
    after the token being computed (`stopped` in the result says so)."""
    request = checked_numbers(request)
    model, tokenizer = shelf.get(request.size)
    prepared = prepare(request, tokenizer, model.config.n_positions)
    streamer = CallbackStreamer(tokenizer, on_text) if on_text else None
    extra = {"stopping_criteria": StoppingCriteriaList([StopWhenSet(stop)])} if stop is not None else {}
    torch.manual_seed(request.seed)
    start = time.perf_counter()
    with torch.no_grad():
        output = model.generate(prepared.input_ids.to(shelf.device), streamer=streamer,
                                **{**prepared.generate_kwargs, "use_cache": use_cache}, **extra)
    seconds = time.perf_counter() - start
    new_ids = output[0, prepared.input_ids.shape[1] :]
    prompt_text = tokenizer.decode(prepared.input_ids[0], skip_special_tokens=True)
    continuation = tokenizer.decode(new_ids, skip_special_tokens=True)
    return {
        **asdict(request),
        "text": prompt_text + continuation,
        "continuation": continuation,
        "new_tokens": len(new_ids),
        "tokens_per_s": len(new_ids) / seconds if seconds > 0 else float("nan"),
        "notes": prepared.notes,
        "stopped": bool(stop is not None and stop.is_set()),
    }


def next_tokens(shelf: ModelShelf, size: str, prompt: str, k: int = 10) -> list[tuple[str, float]]:
    """The `k` most likely next tokens after `prompt`, with their probabilities."""
    model, tokenizer = shelf.get(size)
    if not (isinstance(k, int) and 1 <= k <= len(tokenizer)):
        raise GenerationInputError(f"k={k!r}: choose a whole number from 1 to {len(tokenizer):,} (the vocabulary).")
    prepared = prepare(Request(prompt=prompt, size=size, max_new_tokens=1), tokenizer, model.config.n_positions)
    with torch.no_grad():
        logits = model(input_ids=prepared.input_ids.to(shelf.device)).logits[0, -1]
    probs = torch.softmax(logits.float(), dim=-1)
    top = torch.topk(probs, k)
    return [(tokenizer.decode([int(i)]), float(p)) for p, i in zip(top.values, top.indices, strict=True)]
