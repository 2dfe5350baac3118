#!/usr/bin/env python3
"""Prints the installed Debian packages the given root packages need (Depends and
Pre-Depends, recursively; for alternatives the first installed one; virtual names resolved to
an installed provider), one per line, sorted. Used by build-guest.sh to build the guest system
image from exactly the files of these packages."""
import re
import subprocess
import sys

FIELDS = "${Package}\t${db:Status-Abbrev}\t${Provides}\t${Depends}\t${Pre-Depends}\n"
listing = subprocess.run(
    ["dpkg-query", "-W", "-f=" + FIELDS], capture_output=True, text=True, check=True
).stdout

installed, providers = {}, {}
for line in listing.splitlines():
    name, status, provides, depends, pre_depends = (line.split("\t") + [""] * 5)[:5]
    if not status.startswith("ii"):
        continue
    installed[name] = ", ".join(part for part in (depends, pre_depends) if part)
    for provided in provides.split(","):
        provided = re.sub(r"\(.*?\)", "", provided).strip()
        if provided:
            providers.setdefault(provided, name)


def resolve(alternatives):
    for alternative in alternatives.split("|"):
        name = re.sub(r"\(.*?\)|\[.*?\]|<.*?>", "", alternative).strip().split(":")[0]
        if name in installed:
            return name
        if name in providers:
            return providers[name]
    return None


missing = [name for name in sys.argv[1:] if name not in installed]
if missing:
    sys.exit("package-closure: not installed: " + " ".join(missing))
seen, queue = set(), list(sys.argv[1:])
while queue:
    name = queue.pop()
    if name in seen:
        continue
    seen.add(name)
    for group in filter(None, (part.strip() for part in installed[name].split(","))):
        chosen = resolve(group)
        if chosen and chosen not in seen:
            queue.append(chosen)
print("\n".join(sorted(seen)))
