#!/usr/bin/env python3
"""Fails on a relative link in the READMEs that registries render as long descriptions.

PyPI shows bindings-py/README.md and crates.io shows each crate's README.md away from the
repository, so a relative link there (`../SPEC.md`, `tests/`) points nowhere. Every link
must carry a scheme (https://, mailto:) or be an anchor within the page (#section).

    python3 scripts/readme_links.py FILE...   # exit 1 and one line per relative link
"""

import re
import sys

# Markdown inline links and images: [text](target "title"), ![alt](target).
INLINE = re.compile(r"!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*<?([^)\s>]*)>?(?:\s+[\"'(][^)]*)?\)")
# Reference definitions: [label]: target
REFERENCE = re.compile(r"^\s{0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s|$)")
# Raw HTML: href="..." / src="..."
HTML = re.compile(r"""\b(?:href|src)\s*=\s*["']([^"']*)["']""", re.IGNORECASE)
ABSOLUTE = re.compile(r"^(?:[a-zA-Z][a-zA-Z0-9+.-]*:|#)")
CODE_SPAN = re.compile(r"(`+).*?\1")


def relative_links(text: str) -> list[tuple[int, str]]:
    """(line number, target) of every link that is neither absolute nor an anchor."""
    found = []
    fence = None
    for number, line in enumerate(text.splitlines(), 1):
        opened = re.match(r"^\s{0,3}(```+|~~~+)", line)
        if fence is not None:
            if opened and opened.group(1)[0] == fence[0] and len(opened.group(1)) >= len(fence):
                fence = None
            continue
        if opened:
            fence = opened.group(1)
            continue
        # Code spans are text, not links; blanked, a span that is a link's text ([`SPEC.md`](...))
        # still leaves the link around it.
        prose = CODE_SPAN.sub(lambda m: "x" * len(m.group(0)), line)
        targets = [m.group(1) for m in INLINE.finditer(prose)]
        targets += [m.group(1) for m in REFERENCE.finditer(prose)]
        targets += [m.group(1) for m in HTML.finditer(prose)]
        found += [(number, t) for t in targets if not ABSOLUTE.match(t)]
    return found


def main(paths: list[str]) -> int:
    if not paths:
        print(__doc__.strip().splitlines()[-1], file=sys.stderr)
        return 2
    bad = 0
    for path in paths:
        with open(path, encoding="utf-8") as f:
            for number, target in relative_links(f.read()):
                print(f"{path}:{number}: relative link {target or '(empty)'!r}: use https://github.com/isec-rs/isec/blob/main/...")
                bad += 1
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
