"""`python -m junglegpt.papermill_cli ARGS`: papermill's command line (the same ARGS), started faster.

papermill checks notebooks with nbformat, which imports jsonschema, which imports rfc3987_syntax
where it is installed (JupyterLab brings it). That module builds a grammar as it is imported:
papermill took 5.5 s to start here with it, 1.5 s without (measured), paid for every notebook a
run executes. It only checks the formats "iri" and "iri-reference", which no notebook schema
uses, so this command leaves it out: jsonschema carries on without it, as where it is not
installed.
"""

import sys

sys.modules.setdefault("rfc3987_syntax", None)  # `import rfc3987_syntax` now raises ImportError

from papermill.cli import papermill  # noqa: E402

if __name__ == "__main__":
    papermill()
