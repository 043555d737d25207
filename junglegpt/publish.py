"""Publishing every trained size to the Hugging Face Hub, grouped in a collection (notebook 08).

The dry run (the default) writes everything that would be sent under OUT/hub/: one folder per size
(`junglegpt-<size>/`: the model, its tokenizer and its card) and `collection.json` (the collection's
title, description and items, in size order, each with a one-line note). `push` sends that, and
can be rerun after an interruption: repositories are created with exist_ok, a size whose folder
was uploaded unchanged is not sent again (OUT/hub/push_state.json remembers), and the collection
and its items are created only when missing, so nothing is duplicated.

The token is the caller's (`find_token`): it goes into the Hub client and nowhere else. Errors
from the client are re-raised with the token blanked out of their message, should a server ever
echo it.
"""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path

from . import REPO_URL
from .io import atomic_directory, atomic_write_json, link_or_copy, read_json
from .modelcard import build_model_card, check_model_card
from .paths import OutputDirs
from .sizes import SIZES

COLLECTION_TITLE = "JungleGPT: GPT-2 from scratch on The Jungle Book"
COLLECTION_DESCRIPTION = ("Eight GPT-2 sizes, 1M to 100M parameters, trained from scratch on Kipling's The Jungle "
                          "Book by the JungleGPT notebooks; validation and held-out bits per byte in each card.")


class QuickModelRefused(ValueError):
    """A size trained only in the smoke or quick profile, which is not published unless asked for."""


def repo_id(namespace: str, size: str) -> str:
    return f"{namespace}/junglegpt-{size}"


def note(metrics: dict, heldout_bpb: float | None) -> str:
    """The collection's one line for a size (the Hub allows 500 characters)."""
    held = f", held-out {heldout_bpb:.3f}" if heldout_bpb is not None else ""
    return (f"{metrics['n_params'] / 1e6:.1f}M parameters: validation {metrics['best_val_bpb']:.3f} bits per byte"
            f"{held} ({metrics['profile']} profile, {metrics['hardware'].split(' (')[0]})")


def stage(out: OutputDirs, namespace: str, results: dict | None = None) -> dict:
    """Write OUT/hub/junglegpt-<size>/ for every trained size, and OUT/hub/collection.json; check each
    card offline. Returns the collection plan (what collection.json holds)."""
    from .runs import metrics_problem

    hub = out.root / "hub"
    if hub.exists() and not hub.is_dir():
        raise NotADirectoryError(f"{hub} is a file, where the dry run stages what it would send: move it away "
                                 "(nothing was written).")
    heldout = {r["size"]: r.get("heldout_bpb") for r in (results or {}).get("sizes", [])}
    items = []
    for size in SIZES:
        model_dir = out.model(size)
        if not (model_dir / "metrics.json").exists():
            continue
        metrics = read_json(model_dir / "metrics.json")
        problem = metrics_problem(metrics)
        if problem:  # a run that diverged (NaN is written as null) has no card to write
            raise ValueError(f"{size} cannot be published: {problem}. Retrain it: ./run_all.sh --sizes {size} "
                             f"(or 03_train.ipynb with model_size=\"{size}\" and force=True).")
        staged = hub / f"junglegpt-{size}"
        try:
            with atomic_directory(staged) as tmp:
                for path in model_dir.iterdir():
                    if path.is_file() and path.name != "README.md":
                        link_or_copy(path, tmp / path.name)
                build_model_card(metrics, heldout_bpb=heldout.get(size), series_url=REPO_URL).save(tmp / "README.md")
        except PermissionError as err:  # a read-only OUT/hub: the traceback named a temporary folder in it
            raise PermissionError(f"cannot write in {hub} ({err.strerror}): make it writable, or run with another "
                                  "OUT; nothing was sent.") from None
        problems = check_model_card(staged / "README.md", metrics)
        if problems:
            raise ValueError(f"the card of {size} is wrong: {problems}")
        items.append({"size": size, "repo_id": repo_id(namespace, size), "folder": str(staged),
                      "profile": metrics["profile"], "note": note(metrics, heldout.get(size))})
    plan = {"title": COLLECTION_TITLE, "namespace": namespace, "description": COLLECTION_DESCRIPTION,
            "items": items}
    atomic_write_json(hub / "collection.json", plan)
    return plan


def folder_digest(folder: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(folder.iterdir()):
        digest.update(path.name.encode() + hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


# What a Hugging Face token looks like: blanked out of any message, whatever token was passed, since a
# message may quote it altered (h11 quotes a header with a newline as b'Bearer hf_…\\n').
TOKEN_PATTERN = re.compile(r"hf_[A-Za-z0-9]{8,}")


def _scrubbed(err: Exception, token: str | None) -> RuntimeError:
    message = TOKEN_PATTERN.sub("<token>", f"{type(err).__name__}: {err}")
    for form in {token or "", (token or "").strip(), repr(token or "")[1:-1]}:
        if form.strip():  # a blank token would blank every space
            message = message.replace(form, "<token>")
    return RuntimeError(f"the Hub refused or failed ({message[:500]}). What was sent before is kept: run again "
                        "to finish.")


def refuse_quick(plan: dict, allow_quick: bool = False) -> None:
    """Stop, before anything is sent, if a size was trained in the smoke or quick profile only."""
    quick = [item["size"] for item in plan["items"] if item["profile"] != "full"]
    if quick and not allow_quick:
        raise QuickModelRefused(
            f"{', '.join(quick)} {'was' if len(quick) == 1 else 'were'} trained in the smoke or quick profile only: "
            "a few minutes on a CPU, not the experiment. Nothing was sent. Train them in the full profile "
            "(./run_all.sh on a GPU), or pass allow_quick=True to publish them anyway (their cards say what they are).")


def check_namespace(namespace: str) -> None:
    """Refuse, before anything is checked or sent, a namespace the Hub would refuse (with a space, a
    slash, '..', a leading '-', over 96 characters): offline it was found only at the next run."""
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    try:
        if "/" in namespace:
            raise HFValidationError("a namespace holds no '/'")
        validate_repo_id(repo_id(namespace, "100M"))
    except HFValidationError:
        raise ValueError(f"namespace={namespace!r} is not a Hugging Face user or organisation name: use letters, "
                         "digits, '-', '_' and '.' (not first or last, no '--' or '..'), 96 characters at most, "
                         "e.g. 'your-name'.") from None


def check_ready(plan: dict, namespace: str, token: str | None, allow_quick: bool, staged: Path) -> None:
    """Everything a push needs, checked before anything is sent; each refusal says what to do
    (and never holds the token)."""
    from .pretrained import hub_reachable

    if not namespace:
        raise ValueError("push=True needs namespace: your Hugging Face user or organisation, e.g. 'your-name'.")
    check_namespace(namespace)
    if token is None:
        raise PermissionError("No Hugging Face token found: add a secret named HF_TOKEN (Kaggle: Add-ons → Secrets; "
                              "Colab: the key icon), set the HF_TOKEN environment variable, or run `hf auth login`.")
    refuse_quick(plan, allow_quick)
    if not hub_reachable():
        raise ConnectionError(f"The Hugging Face Hub is unreachable from here: nothing was uploaded. Everything is "
                              f"staged in {staged}: run again with internet, or upload it from elsewhere.")


def push(api, plan: dict, state_file: Path, token: str | None = None, private: bool = True,
         allow_quick: bool = False, say=print) -> str:
    """Send every staged size and the collection with `api` (an `HfApi`); return the collection's slug.

    Refuses, before sending anything, sizes trained in the smoke or quick profile unless
    `allow_quick`. Rerunning after an interruption finishes the job without duplicates.
    """
    refuse_quick(plan, allow_quick)
    state = read_json(state_file) if state_file.exists() else {"uploaded": {}}
    try:
        for item in plan["items"]:
            digest = folder_digest(Path(item["folder"]))
            if state["uploaded"].get(item["repo_id"]) == digest:
                say(f"  {item['repo_id']}: sent before, unchanged")
                continue
            api.create_repo(item["repo_id"], private=private, exist_ok=True)
            api.upload_folder(repo_id=item["repo_id"], folder_path=item["folder"],
                              commit_message=f"JungleGPT {item['size']} ({item['profile']} profile)")
            state["uploaded"][item["repo_id"]] = digest
            atomic_write_json(state_file, state)
            say(f"  {item['repo_id']}: sent")
        collection = api.create_collection(plan["title"], namespace=plan["namespace"],
                                           description=plan["description"], private=private, exists_ok=True)
        there = {existing.item_id for existing in collection.items}
        for item in plan["items"]:  # in size order, so a resumed push keeps the order
            if item["repo_id"] not in there:
                api.add_collection_item(collection.slug, item["repo_id"], "model", note=item["note"], exists_ok=True)
        state["collection"] = collection.slug
        atomic_write_json(state_file, state)
    except Exception as err:  # the client's errors, with the token blanked out
        raise _scrubbed(err, token) from None
    say(f"collection: https://huggingface.co/collections/{collection.slug}")
    return collection.slug


def find_token() -> tuple[str | None, str]:
    """A Hugging Face token and where it came from, looked for in this order:

    Kaggle's secrets (a secret named HF_TOKEN), Colab's secrets (`userdata`, HF_TOKEN), the HF_TOKEN
    environment variable, then the token cached by `huggingface-cli login` / `hf auth login`.
    The token itself must never be printed, logged or passed as a papermill parameter: callers get it
    here, use it, and show only the source.
    """
    from .environment import on_colab, on_kaggle

    if on_kaggle():
        try:
            from kaggle_secrets import UserSecretsClient

            token = (UserSecretsClient().get_secret("HF_TOKEN") or "").strip()
            if token:
                return token, "Kaggle secret HF_TOKEN"
        except Exception:  # no such secret, or secrets not enabled for this notebook
            pass
    if on_colab():
        try:
            from google.colab import userdata

            token = (userdata.get("HF_TOKEN") or "").strip()
            if token:
                return token, "Colab secret HF_TOKEN"
        except Exception:  # no such secret, or access not granted
            pass
    if os.environ.get("HF_TOKEN", "").strip():  # a token pasted with its newline: the newline is not part of it
        return os.environ["HF_TOKEN"].strip(), "the HF_TOKEN environment variable"
    from huggingface_hub import get_token

    token = get_token()
    return (token, "the cached Hugging Face login") if token else (None, "nowhere")
