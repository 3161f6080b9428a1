#!/usr/bin/env python3
"""Every relative link in README.md and docs/*.md names a file that exists and, with a
#fragment, a heading of that file (GitHub's anchor rule: lower case, punctuation
other than '-' and '_' dropped, spaces to '-'); every repository path quoted in
backticks (`configs/machines/x86_small.json`, `tools/plot`, ...) exists.
Usage: docs_links_test.py ROOT"""
import pathlib
import re
import sys

root = pathlib.Path(sys.argv[1])
REPO_PATH = re.compile(r"^(?:docs|configs|tools|tests|workloads|mm|models|base|cmake)/[\w./-]*[\w/]$")
LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)\)")
HEADING = re.compile(r"^#{1,6}\s+(.*?)\s*#*\s*$")


def anchors(path):
    out, seen, fence = set(), {}, False
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.lstrip().startswith("```"):
            fence = not fence
            continue
        m = None if fence else HEADING.match(line)
        if not m:
            continue
        text = re.sub(r"`([^`]*)`", r"\1", m.group(1))
        text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", text)
        slug = re.sub(r"[^\w\- ]", "", text.lower()).replace(" ", "-")
        n = seen.get(slug, 0)
        seen[slug] = n + 1
        out.add(slug if n == 0 else f"{slug}-{n}")
    return out


failed = checked = 0
files = [root / "README.md"] + sorted((root / "docs").rglob("*.md"))
for f in files:
    fence = False
    for no, line in enumerate(f.read_text(encoding="utf-8").splitlines(), 1):
        if line.lstrip().startswith("```"):
            fence = not fence
            continue
        if fence:
            continue
        for span in re.findall(r"`([^`\s]+)`", line):
            p = span.rstrip("/")
            if not REPO_PATH.match(p) or any(c in p for c in "*<>") or p.isupper():
                continue
            if re.search(r"/[A-Z][A-Z_]+(\.|$)", p):
                continue  # a placeholder such as workloads/catalog/NAME.json
            checked += 1
            if not (root / p).exists():
                print(f"FAIL {f.relative_to(root)}:{no}: `{span}`: no such path")
                failed += 1
        for target in LINK.findall(re.sub(r"`[^`]*`", "", line)):
            if re.match(r"^[a-z]+:", target):
                continue  # http:, https:, mailto:
            path, _, frag = target.partition("#")
            dest = (f.parent / path).resolve() if path else f
            checked += 1
            where = f"{f.relative_to(root)}:{no}: {target}"
            if not dest.exists():
                print(f"FAIL {where}: no such file")
                failed += 1
            elif frag and dest.suffix == ".md" and frag not in anchors(dest):
                print(f"FAIL {where}: no heading #{frag} in {dest.relative_to(root)}")
                failed += 1
print(f"{checked} links checked, {failed} dangling")
sys.exit(1 if failed else 0)
