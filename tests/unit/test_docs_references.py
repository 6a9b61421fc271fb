"""A doc that names a test as its proof must name one that exists: docs/security.md drifting
from the suite would promise what nothing checks any more."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
REFERENCE = re.compile(r"`(tests/[\w/]+\.py)(?:::(\w+))?`")


def test_every_test_a_doc_names_exists() -> None:
    missing = []
    for doc in [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]:
        for path, name in REFERENCE.findall(doc.read_text()):
            target = ROOT / path
            if not target.exists() or (name and f"def {name}(" not in target.read_text()):
                missing.append(f"{doc.relative_to(ROOT)}: {path}{'::' + name if name else ''}")
    assert missing == []
    assert REFERENCE.search((ROOT / "docs" / "security.md").read_text())  # the review does name its proofs
