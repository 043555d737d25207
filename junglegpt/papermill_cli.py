"""`python -m junglegpt.papermill_cli ARGS`: papermill's command line (the same ARGS), started faster.

papermill checks notebooks with nbformat, which imports jsonschema, which imports rfc3987_syntax
where it is installed (JupyterLab brings it). That module builds a grammar as it is imported:
papermill took 5.5 s to start here with it, 1.5 s without (measured), paid for every notebook a
run executes. It only checks the formats "iri" and "iri-reference", which no notebook schema
uses, so this command leaves it out: jsonschema carries on without it, as where it is not
installed.
"""

import os
import sys
import tempfile

sys.modules.setdefault("rfc3987_syntax", None)  # `import rfc3987_syntax` now raises ImportError

# The runner names a private folder for the kernel's connection file (jupyter_client writes it with
# tempfile.mkstemp; it holds the key that lets anyone run code in the kernel), and deletes the
# folder when the notebook ends, even when papermill is killed and cannot remove the file itself.
# Only papermill's own temporary files go there: the kernel keeps the usual temporary folder.
KERNEL_FILES_ENV = "JUNGLEGPT_KERNEL_FILES_DIR"


def main() -> None:
    if os.environ.get(KERNEL_FILES_ENV):
        tempfile.tempdir = os.environ.pop(KERNEL_FILES_ENV)
    from papermill.cli import papermill

    papermill()


if __name__ == "__main__":
    main()
