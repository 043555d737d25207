"""Designs of the count side of the mixture, tried on the two tuning texts only (issue 32).

    .venv/bin/python benchmarks/mixture_variants.py --out OUT [--size 1M] [--name full-cpu-1M]

The held-out book's settings are chosen on validation and validation's on the training text's last
tenth (notebook 04's rule), so a change of design is judged on those two texts, never on a
reported one. Each variant is the learning network (at the rates the rule chose in
benchmarks/results/mixture_<name>.json) blended with count models as `junglegpt.mixture.score`
blends them (a blend learning by gradient under a fixed-share safety net), and differs in one thing:

- the counts' longest context (orders 4, 5, 6) or discount;
- count-dependent discounts (modified Kneser-Ney: D(1), D(2), D(3+) and each context's types by count);
- a second, "fresh" count model that reads only the text being scored (no priming);
- a token of the text being read counting `recent` times (the priming text's once);
- a neural cache (Grave et al., 2017): earlier positions whose frozen hidden states are near the
  current one, weighted by exp(-theta * squared distance), vote for the token that came next.

Written to benchmarks/results/mixture_variants_<name>.json with the machine and the seconds.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import mixture as whole_texts  # noqa: E402  (benchmarks/mixture.py: the texts, as it cuts them)
from transformers import AutoModelForCausalLM, AutoTokenizer  # noqa: E402

from junglegpt import dynamic, mixture  # noqa: E402
from junglegpt.environment import describe_hardware  # noqa: E402
from junglegpt.io import atomic_write_json, read_json  # noqa: E402
from junglegpt.metrics import bits_per_byte  # noqa: E402
from junglegpt.paths import OutputDirs  # noqa: E402


class DiscountsByCount(mixture.TokenCounts):
    """Counts with modified Kneser-Ney's discounts: D(1), D(2), D(3+) by how often a token was seen."""

    def __init__(self, vocab_size: int, max_order: int, discounts: tuple[float, float, float]):
        super().__init__(vocab_size, max_order, discounts[-1])
        self.discounts = discounts
        self.kinds: list[dict] = [{} for _ in range(max_order + 1)]  # context -> [seen once, twice, 3+]

    def prob(self, contexts, token):
        p, seen = 1.0 / self.vocab_size, 0
        d1, d2, d3 = self.discounts
        for table, kinds, context in zip(self.tables, self.kinds, contexts):  # noqa: B905
            entry = table.get(context)
            if entry is None:
                break
            total, counts = entry
            n1, n2, n3 = kinds[context]
            c = counts.get(token, 0)
            d = 0.0 if c == 0 else d1 if c == 1 else d2 if c == 2 else d3
            p = (max(c - d, 0.0) + (d1 * n1 + d2 * n2 + d3 * n3) * p) / total
            seen += 1
        return p, seen

    def update(self, contexts, token):
        n = len(contexts)
        for table, kinds, context in zip(reversed(self.tables[:n]), reversed(self.kinds[:n]), reversed(contexts),
                                         strict=True):
            entry = table.get(context)
            if entry is None:
                entry = table[context] = [0, {}]
                kinds[context] = [0, 0, 0]
            entry[0] += 1
            before = entry[1].get(token, 0)
            entry[1][token] = before + 1
            k = kinds[context]
            if before < 3:
                k[min(before, 2)] += 1
                if before:
                    k[before - 1] -= 1
            if before:
                break


class Recent(mixture.TokenCounts):
    """Counts where a token read after priming counts `recent` times."""

    def __init__(self, vocab_size, max_order, discount, recent):
        super().__init__(vocab_size, max_order, discount)
        self.recent, self.primed = recent, False

    def prime(self, ids):
        super().prime(ids)
        self.primed = True
        return self

    def update(self, contexts, token):
        weight = self.recent if self.primed else 1
        for table, context in zip(reversed(self.tables[: len(contexts)]), reversed(contexts), strict=True):
            entry = table.get(context)
            if entry is None:
                entry = table[context] = [0, {}]
            entry[0] += weight
            before = entry[1].get(token, 0)
            entry[1][token] = before + weight
            if before:
                break


class Precomputed:
    """A part whose p(token) at every position was computed beforehand (from earlier positions only)."""

    def __init__(self, p):
        self.p, self.t = p, 0

    def contexts(self, history):
        return None

    def prob(self, contexts, token):
        return float(self.p[self.t]), 0

    def update(self, contexts, token):
        self.t += 1

    def prime(self, ids):
        return self


def blend(prime, ids, network_nats, parts: dict, mixer_lr=0.1, share=0.002) -> float:
    """Nats of `ids`: the network and `parts` ({name: (make, primed)}) mixed as mixture.score mixes."""
    history = [int(t) for t in prime]
    models = {name: (make().prime(history) if primed else make()) for name, (make, primed) in parts.items()}
    mixer = mixture.Mixer(1 + len(models), mixer_lr, share)
    total = 0.0
    for t, token in enumerate(int(x) for x in ids):
        contexts = {name: m.contexts(history) for name, m in models.items()}
        ps = [math.exp(-network_nats[t])] + [m.prob(contexts[n], token)[0] for n, m in models.items()]
        total -= math.log(mixer.learn(ps)[0])
        for name, m in models.items():
            m.update(contexts[name], token)
        history.append(token)
    return total


def hidden_states(model, ids: torch.Tensor, start_id: int) -> torch.Tensor:
    """The frozen network's last hidden state at the position that predicts each token (as scored)."""
    out = []
    with torch.no_grad():
        for window in dynamic.windows(len(ids)):
            x = dynamic.window_input(ids, window, start_id)
            h = model(input_ids=x, output_hidden_states=True).hidden_states[-1][0, :-1]
            out.append(h[-(window.end - window.start) :])
    return torch.cat(out).float()


def cache_probs(keys_prime, ids_prime, queries, ids, theta: float) -> np.ndarray:
    """p_cache(ids[t]): every earlier position i (the priming text's, then ids[:t]) votes for the
    token after it with weight exp(-theta |q_t - q_i|^2), normalised over the earlier positions."""
    keys, values = torch.cat([keys_prime, queries]), torch.cat([ids_prime, ids])
    n0, found = len(ids_prime), np.empty(len(ids))
    squared = (keys * keys).sum(1)
    for s in range(0, len(ids), 512):
        e = min(s + 512, len(ids))
        q = queries[s:e]
        score = -theta * ((q * q).sum(1, keepdim=True) - 2 * q @ keys[: n0 + e].T + squared[: n0 + e])
        later = torch.arange(n0 + e)[None] >= torch.arange(n0 + s, n0 + e)[:, None]
        weights = torch.softmax(score.masked_fill(later, float("-inf")).double(), 1)
        found[s:e] = (weights * (values[: n0 + e][None] == ids[s:e, None])).sum(1).numpy()
    return found


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, type=Path, help="a full-profile run's folder")
    parser.add_argument("--size", default="1M")
    parser.add_argument("--name", default="full-cpu-1M", help="benchmarks/results/mixture_<name>.json gives the rates")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    out = OutputDirs(args.out)
    tokenizer = AutoTokenizer.from_pretrained(out.tokenizer)
    ids = whole_texts.texts(out, tokenizer)
    model = AutoModelForCausalLM.from_pretrained(out.model(args.size)).float().eval()
    eos = tokenizer.eos_token_id
    rates = {row["text"]: row["lr"] for row in read_json(ROOT / "benchmarks" / "results" /
                                                         f"mixture_{args.name}.json")["sizes"][args.size]["rows"]}
    # (tuning text, priming text, the rate of the reported text it tunes)
    tuning = {"val (tunes held-out)": ("val", "train", rates["heldout"]),
              "tenth (tunes validation)": ("tenth", "nine_tenths", rates["val"])}
    vocab = len(tokenizer)

    def counts(order=4, discount=0.65):
        return lambda: mixture.TokenCounts(vocab, order, discount)

    variants = {
        "counts, order 4, discount 0.65": {"counts": (counts(), True)},
        "counts, discount 0.5": {"counts": (counts(discount=0.5), True)},
        "counts, order 5": {"counts": (counts(5), True)},
        "counts, order 6": {"counts": (counts(6), True)},
        **{f"discounts by count {d}": {"counts": ((lambda d=d: DiscountsByCount(vocab, 4, d)), True)}
           for d in ((0.5, 0.8, 0.9), (0.6, 0.9, 1.0))},
        "+ fresh counts (order 4, discount 0.65)": {"counts": (counts(), True), "fresh": (counts(), False)},
        **{f"recent {r}": {"counts": ((lambda r=r: Recent(vocab, 4, 0.65, r)), True)} for r in (2, 3, 5)},
    }
    record = {"machine": describe_hardware(), "size": args.size, "protocol": __doc__.split("\n\n")[1], "texts": {}}
    for label, (text, prime, lr) in tuning.items():
        nats = torch.cat(dynamic.token_nats(model, ids[text], eos, lr)).numpy()
        n_bytes = whole_texts.n_bytes(tokenizer, ids[text])
        rows = {"network alone": bits_per_byte(float(nats.sum()), n_bytes)}
        for name, parts in variants.items():
            rows[name] = bits_per_byte(blend(ids[prime], ids[text], nats, parts), n_bytes)
            print(f"{label:26s} {name:42s} {rows[name]:.4f}", flush=True)
        keys, queries = hidden_states(model, ids[prime], eos), hidden_states(model, ids[text], eos)
        for theta in (0.003, 0.01, 0.03):
            p = cache_probs(keys, ids[prime], queries, ids[text], theta)
            name = f"+ neural cache, theta {theta}"
            parts = {"counts": (counts(), True), "cache": ((lambda p=p: Precomputed(p)), False)}
            rows[name] = bits_per_byte(blend(ids[prime], ids[text], nats, parts), n_bytes)
            print(f"{label:26s} {name:42s} {rows[name]:.4f}", flush=True)
        record["texts"][label] = {"lr": lr, "bytes": n_bytes, "bpb": rows}
    record["seconds"] = round(time.perf_counter() - started, 1)
    path = ROOT / "benchmarks" / "results" / f"mixture_variants_{args.name}.json"
    atomic_write_json(path, record)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
