"""Loading pretrained models and tokenizers from the Hugging Face Hub when there is a network, and
saying so when not (publishing to the Hub is `publish.py`)."""

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
