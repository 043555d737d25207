"""Loading pretrained things from the Hugging Face Hub when there is a network, and saying so when not."""

from __future__ import annotations

import os
import socket

HUB_HOST = "huggingface.co"


def hub_reachable(timeout: float = 3.0) -> bool:
    """A quick check, so that offline machines do not sit through the Hub client's retries."""
    if os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes"):
        return False
    try:
        socket.create_connection((HUB_HOST, 443), timeout=timeout).close()
        return True
    except OSError:
        return False


def try_from_pretrained(loader, name: str, **kwargs):
    """`loader.from_pretrained(name)`, or None with a printed note when the Hub cannot be reached.

    Used for the optional comparisons with pretrained GPT-2: offline (CI, a plane, a locked-down
    cluster) the notebook says so and carries on without them.
    """
    if not hub_reachable():
        try:  # offline, but it may be in the local cache from an earlier online run
            return loader.from_pretrained(name, local_files_only=True, **kwargs)
        except (OSError, ValueError):
            print(f"The Hugging Face Hub cannot be reached from here and {name!r} is not in the local "
                  "cache: carrying on without it (run with internet to include it).")
            return None
    try:
        return loader.from_pretrained(name, **kwargs)
    except (OSError, ValueError) as err:  # no network, no cache: OSError (or a ValueError subclass)
        first_line = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        print(f"Could not load {name!r} from the Hugging Face Hub ({first_line[:160]}). "
              "Carrying on without it; run with internet to include it.")
        return None


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

            token = UserSecretsClient().get_secret("HF_TOKEN")
            if token:
                return token, "Kaggle secret HF_TOKEN"
        except Exception:  # no such secret, or secrets not enabled for this notebook
            pass
    if on_colab():
        try:
            from google.colab import userdata

            token = userdata.get("HF_TOKEN")
            if token:
                return token, "Colab secret HF_TOKEN"
        except Exception:  # no such secret, or access not granted
            pass
    if os.environ.get("HF_TOKEN"):
        return os.environ["HF_TOKEN"], "the HF_TOKEN environment variable"
    from huggingface_hub import get_token

    token = get_token()
    return (token, "the cached Hugging Face login") if token else (None, "nowhere")
