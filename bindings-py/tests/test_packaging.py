"""What PyPI shows and pip installs: the metadata and files of the installed distribution.

scripts/test-python.sh installs the built wheel, so these read the wheel's own METADATA,
license files and long description, as a user's pip would get them."""

from __future__ import annotations

import importlib.metadata
import importlib.util
import sys
from pathlib import Path

import isec

REPO = "https://github.com/isec-rs/isec"
SCRIPTS = Path(__file__).resolve().parents[2] / "scripts"


def dist() -> importlib.metadata.Distribution:
    return importlib.metadata.distribution("isec")


def test_license_expression_and_files_are_shipped() -> None:
    meta = dist().metadata
    assert meta["License-Expression"] == "MIT OR Apache-2.0"
    assert sorted(meta.get_all("License-File") or []) == ["LICENSE-APACHE", "LICENSE-MIT"]
    texts = {
        Path(str(f)).name: f.read_text()
        for f in dist().files or []
        if Path(str(f)).name.startswith("LICENSE-") and ".dist-info" in str(f)
    }
    assert "Copyright (c) 2026 The isec authors" in texts["LICENSE-MIT"]
    assert "Version 2.0, January 2004" in texts["LICENSE-APACHE"]
    assert "END OF TERMS AND CONDITIONS" in texts["LICENSE-APACHE"]


def test_project_urls_point_at_the_repository() -> None:
    urls = dict(u.split(", ", 1) for u in dist().metadata.get_all("Project-URL") or [])
    assert {"Homepage", "Repository", "Documentation", "Changelog"} <= set(urls)
    for name, url in urls.items():
        assert url.startswith(REPO), (name, url)


def test_long_description_has_no_relative_links() -> None:
    meta = dist().metadata
    assert meta["Description-Content-Type"].startswith("text/markdown")
    body = meta["Description"]
    assert isinstance(body, str) and body.startswith("# isec for Python"), body[:80]
    spec = importlib.util.spec_from_file_location("readme_links", SCRIPTS / "readme_links.py")
    assert spec is not None and spec.loader is not None
    links = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(links)
    assert links.relative_links(body) == []
    # The checker finds what it must: a relative link in the same text fails it.
    assert [t for _, t in links.relative_links(body + "\n[spec](../SPEC.md)\n")] == ["../SPEC.md"]


def test_the_installed_package_is_not_the_source_tree() -> None:
    # The suite must test what pip installs, not bindings-py/python.
    source = Path(__file__).resolve().parents[1] / "python"
    assert not Path(isec.__file__).resolve().is_relative_to(source)
    assert Path(isec.__file__).resolve().is_relative_to(Path(sys.prefix).resolve())
