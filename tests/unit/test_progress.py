"""Progress of long commands: plain lines on standard error when asked, nothing otherwise, and
never a byte on standard output (which carries results)."""

from __future__ import annotations

import pytest

from entrypoints import progress
from entrypoints.progress import CommandProgress


def test_plain_lines_go_to_standard_error(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(progress, "PLAIN_EVERY_SECONDS", 0.0)
    with CommandProgress("rebuilding session_stats", 200, terminal=False, plain_lines=True) as shown:
        shown.update(100)
    out, err = capsys.readouterr()
    assert out == ""
    assert err.startswith("rebuilding session_stats: 100/200 (")


def test_without_plain_lines_nothing_is_printed(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(progress, "PLAIN_EVERY_SECONDS", 0.0)
    with CommandProgress("exporting", 10, terminal=False, plain_lines=False) as shown:
        shown.update(5, 3)
    assert capsys.readouterr() == ("", "")
