# SPDX-License-Identifier: GPL-2.0
"""Checks the project's Markdown: every relative link (README.md,
CONTRIBUTING.md, docs/*.md) reaches an existing file, and an anchor a
heading of it (GitHub's slugs); every path in the README's layout tables
exists and every `make` target it lists is in the Makefile; so that a file
moved in a restructuring cannot leave the documentation pointing at nothing.

Usage: python3 scripts/check-docs.py [ROOT]; prints each problem, exits 1 if any.
"""
import glob
import os
import re
import sys

root = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..")
files = [os.path.join(root, "README.md"), os.path.join(root, "CONTRIBUTING.md")]
files += sorted(glob.glob(os.path.join(root, "docs", "*.md")))


def without_code_blocks(text):
    return re.sub(r"```.*?```", "", text, flags=re.S)


def slugs(path):
    out, seen = set(), {}
    for line in without_code_blocks(open(path).read()).splitlines():
        m = re.match(r"^(#+)\s+(.*)", line)
        if not m:
            continue
        slug = re.sub(r"[^\w\- ]", "", m.group(2).strip().lower()).replace(" ", "-")
        n = seen.get(slug, 0)
        seen[slug] = n + 1
        out.add(slug if n == 0 else f"{slug}-{n}")
    return out


problems, links = [], 0
for f in files:
    for m in re.finditer(r"\]\(([^)\s]+)\)", without_code_blocks(open(f).read())):
        target = m.group(1)
        if re.match(r"[a-z]+:", target):
            continue
        links += 1
        path, _, anchor = target.partition("#")
        full = os.path.normpath(os.path.join(os.path.dirname(f), path)) if path else f
        if not os.path.exists(full):
            problems.append(f"{os.path.relpath(f, root)}: link to a missing file: {target}")
        elif anchor and full.endswith(".md") and anchor not in slugs(full):
            problems.append(f"{os.path.relpath(f, root)}: link to a missing heading: {target}")

# The layout tables (rows "| `path` | ... |" under "## Layout") name files of
# this repository; directories made by a command say "(made by". The make
# targets table names targets of the Makefile.
readme = open(os.path.join(root, "README.md")).read()
sections = dict(re.findall(r"^## (.+?)\n(.*?)(?=^## |\Z)", readme, flags=re.S | re.M))
paths = 0
for line in sections.get("Layout", "").splitlines():
    if not line.startswith("| `") or "(made by" in line:
        continue
    for p in re.findall(r"`([^`]+)`", line.split("|")[1]):
        paths += 1
        if not glob.glob(os.path.join(root, p.rstrip("/"))):
            problems.append(f"README.md: the layout names {p}, which does not exist")
makefile = open(os.path.join(root, "Makefile")).read()
targets = set(re.findall(r"^([a-z][a-z-]*):", makefile, flags=re.M))
for line in sections.get("The make targets", "").splitlines():
    for t in re.findall(r"`make ([a-z][a-z-]*)", line.split("|")[1] if "|" in line else ""):
        paths += 1
        if t not in targets:
            problems.append(f"README.md: make {t} is not a target of the Makefile")

print("\n".join(problems) if problems else f"{links} links, {paths} layout paths and make targets checked")
sys.exit(1 if problems else 0)
