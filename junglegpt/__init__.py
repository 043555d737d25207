"""Plumbing for the JungleGPT notebooks: data, paths, environment, atomic writes.

The teaching code (tokenizer training, model configuration, the training loop) lives in the
notebooks; this package holds what would only distract a learner, and what two notebooks share.
"""

REPO_URL = "https://github.com/junglegpt/junglegpt"

__all__ = ["REPO_URL"]
