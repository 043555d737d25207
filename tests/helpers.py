from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from junglegpt.paths import OutputDirs
from junglegpt.run_all import Job, run_job


def run_all_cli(*args, env=None, timeout=1800, cwd=None):
    """`run_all.sh` minus the environment set-up: the runner as a user calls it."""
    return subprocess.run(
        [sys.executable, "-m", "junglegpt.run_all", *args],
        capture_output=True, text=True, timeout=timeout, env={**os.environ, **(env or {})}, cwd=cwd,
    )


def clone_of_the_working_tree(dest: Path) -> Path:
    """A git clone of this repository holding the working tree's files, committed or not, and committed
    there, so that its `git status` starts clean (in CI the two are the same)."""
    from junglegpt.paths import REPO_ROOT

    def git(*args, cwd):
        return subprocess.run(["git", "-c", "user.name=tests", "-c", "user.email=tests@localhost", *args],
                              cwd=cwd, check=True, capture_output=True).stdout

    git("clone", "-q", str(REPO_ROOT), str(dest), cwd=REPO_ROOT)
    ours = {n.decode() for n in git("ls-files", "-z", "--cached", "--others", "--exclude-standard",
                                    cwd=REPO_ROOT).split(b"\0") if n and (REPO_ROOT / n.decode()).is_file()}
    for name in git("ls-files", "-z", cwd=dest).split(b"\0"):
        if name and name.decode() not in ours:
            (dest / name.decode()).unlink()
    for name in ours:
        (dest / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO_ROOT / name, dest / name)
    git("add", "-A", cwd=dest)
    git("commit", "-q", "--allow-empty", "-m", "the working tree", cwd=dest)
    return dest


def linked_copy(src: Path, dest: Path, ignore=None) -> Path:
    """A copy of the folder `src` whose files are hard links: no extra disk, no time copying models.

    Safe because the project never writes into an existing file (every result, model and checkpoint
    is written to a new file, then renamed over the old: junglegpt.io). A test that damages a file
    must replace it too, never write through it, or it damages the original."""
    return Path(shutil.copytree(src, dest, ignore=ignore, copy_function=os.link))


def copy_inputs(smoke: OutputDirs, root: Path) -> OutputDirs:
    """A folder holding what notebooks 01 and 02 make (data/, tokenizer/), copied from the smoke run
    (`smoke_inputs`) while it may still be writing: its temporary files and 07's text are left out."""
    shutil.copytree(smoke.data, root / "data", ignore=shutil.ignore_patterns(".*", "more_data*"))
    shutil.copytree(smoke.tokenizer, root / "tokenizer")
    return OutputDirs(root)


def git_status(repo: Path) -> str:
    return subprocess.run(["git", "status", "--porcelain", "--untracked-files=all"], cwd=repo, check=True,
                          capture_output=True, text=True).stdout


def run_notebook(name: str, out: Path, env: dict | None = None, **parameters) -> tuple[bool, str]:
    """Run one notebook with papermill into `out`; return (succeeded, the tail of its output)."""
    params = {"out_dir": str(out), "profile": "smoke", **parameters}
    ok, _, tail = run_job(Job(name, params, Path(out) / "executed" / f"{name}.ipynb", name, env=env or {}))
    return ok, tail


def executed_text(out: Path, name: str) -> str:
    """Everything an executed notebook printed, as one string."""
    import nbformat

    nb = nbformat.read(Path(out) / "executed" / f"{name}.ipynb", as_version=4)
    parts = []
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            parts.append(output.get("text", "") or str(output.get("data", {}).get("text/plain", "")))
    return "\n".join(parts)


END_OF_TEXT = "<|endoftext|>"


def save_tiny_gpt2(folder: Path, text: str, vocab_size: int, context: int) -> int:
    """A one-layer GPT-2 with random weights and a byte-level BPE tokenizer like notebook 02's, fitted on
    `text`, saved in `folder` as notebook 03 saves a model (a second to build; its predictions are poor,
    which is all a test of the plumbing needs). Returns the tokenizer's length."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast

    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    bpe.train_from_iterator([text], trainers.BpeTrainer(
        vocab_size=vocab_size, special_tokens=[END_OF_TEXT], initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False))
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=bpe, bos_token=END_OF_TEXT, eos_token=END_OF_TEXT,
                                        pad_token=END_OF_TEXT, model_max_length=context,
                                        clean_up_tokenization_spaces=False)
    torch.manual_seed(0)
    model = GPT2LMHeadModel(GPT2Config(n_layer=1, n_embd=16, n_head=2, vocab_size=len(tokenizer), n_positions=context,
                                       bos_token_id=0, eos_token_id=0))
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return len(tokenizer)
