#!/usr/bin/python3
"""Fill git format-patch's cover letter placeholders from a template.

usage: fill-cover.py TEMPLATE COVER-PATCH

TEMPLATE: first line is the subject, then a blank line, then the body.
"""
import sys


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__.strip())
    with open(sys.argv[1], encoding="utf-8") as f:
        subject, _, body = f.read().partition("\n\n")
    with open(sys.argv[2], encoding="utf-8") as f:
        cover = f.read()
    for mark in ("*** SUBJECT HERE ***", "*** BLURB HERE ***"):
        if mark not in cover:
            sys.exit(f"{sys.argv[2]}: no '{mark}' placeholder")
    cover = cover.replace("*** SUBJECT HERE ***", subject.strip())
    cover = cover.replace("*** BLURB HERE ***", body.strip())
    with open(sys.argv[2], "w", encoding="utf-8") as f:
        f.write(cover)


if __name__ == "__main__":
    main()
