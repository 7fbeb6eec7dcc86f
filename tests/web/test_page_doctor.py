"""`chainmall doctor` says whether the product page is built."""

from __future__ import annotations

from pathlib import Path

import pytest
from chainmall.cli import doctor


def test_doctor_reports_the_page(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    package = tmp_path / "core"
    (package / "rpc" / "static").mkdir(parents=True)
    monkeypatch.setattr(doctor.resources, "files", lambda name: package)
    built, detail = doctor.web_page_status()
    assert not built and "make web" in detail and "app.js" in detail
    for name in ("index.html", "app.js", "style.css"):
        (package / "rpc" / "static" / name).write_text("x" * 600)
    built, detail = doctor.web_page_status()
    assert built and detail.startswith("built (1 KiB")
