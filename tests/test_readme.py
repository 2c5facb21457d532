"""The README is the entry point: its two commands come first and its links resolve to tracked files."""
from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def _tracked() -> set[str] | None:
    out = subprocess.run(["git", "-C", str(ROOT), "ls-files"], capture_output=True, text=True)
    return set(out.stdout.split()) if out.returncode == 0 and out.stdout else None


def test_readme_opens_with_the_two_commands():
    block = re.search(r"```bash\n(.*?)```", README, re.S).group(1).strip().splitlines()
    assert [line.split()[0:2] for line in block] == [["make", "run"], ["make", "test"]]
    ci = (ROOT / ".ci" / "run").read_text()
    assert "make test" in ci


def test_every_relative_link_resolves_to_a_tracked_file():
    tracked = _tracked()
    if tracked is None:
        pytest.skip("not a git checkout: tracked files unknown")
    links = re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", README)
    rel = [ln for ln in links if "://" not in ln and not ln.startswith("mailto:")]
    assert rel, "the README links no file"
    missing = [ln for ln in rel if ln not in tracked and not any(t.startswith(ln.rstrip("/") + "/") for t in tracked)]
    assert not missing, f"README links files that are not tracked: {missing}"
