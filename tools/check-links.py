#!/usr/bin/env python3
"""Checks the relative links of the project's Markdown pages: every target file exists, and
every page under docs/ is linked from README.md. Run from anywhere: python3 tools/check-links.py"""
import pathlib
import re
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", ROOT / "models" / "README.md"]
PAGES += sorted((ROOT / "docs").rglob("*.md")) + sorted((ROOT / "splits").rglob("README.md"))
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
FENCE = re.compile(r"^```.*?^```", re.S | re.M)

def anchors(page):
    """GitHub's heading anchors: lower case, punctuation dropped, spaces as hyphens."""
    headings = re.findall(r"^#+ (.*)$", FENCE.sub("", page.read_text()), re.M)
    return {re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-") for h in headings}


broken = []
for page in PAGES:
    text = FENCE.sub("", page.read_text())
    for target in LINK.findall(text):
        if re.match(r"[a-z]+:", target) or target.startswith("#"):
            continue  # absolute URLs and anchors within the page
        file, _, anchor = target.partition("#")
        path = (page.parent / file).resolve()
        if not path.exists():
            broken.append(f"{page.relative_to(ROOT)}: {target}")
        elif anchor and path.suffix == ".md" and anchor not in anchors(path):
            broken.append(f"{page.relative_to(ROOT)}: {target} (no such heading)")

readme = (ROOT / "README.md").read_text()
linked = {(ROOT / t.split("#")[0]).resolve() for t in LINK.findall(readme)}
unlinked = [p.relative_to(ROOT) for p in (ROOT / "docs").rglob("*.md") if p.resolve() not in linked]

for line in broken:
    print("broken link:", line)
for page in unlinked:
    print("not linked from README.md:", page)
print(f"{len(PAGES)} pages checked")
sys.exit(1 if broken or unlinked else 0)
