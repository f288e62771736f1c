#!/usr/bin/env python3
"""repo/function_lengths: no function body in src/ or tests/ is over 100 lines, except in the key
table (src/config/keys.cpp, data). A function is a brace block opened at the end of a line that
closes a parameter list (`) {`, `) const {`, `) -> T {`, ...) and is not nested in another such
block; its length counts from that line to its closing brace. String and character literals and
// comments are blanked first, so braces in them do not count.

Usage: check_function_lengths.py [--max N] [--top K] [DIR...]   (default: src tests, N = 100)
Prints the K longest (with --top) and every function over N; exits 1 when there is one."""
import argparse
import pathlib
import re
import sys

EXEMPT = {"src/config/keys.cpp"}
OPENS_FUNCTION = re.compile(r"\)\s*(const\s*)?(noexcept\s*)?(override\s*)?(->\s*[\w:<>, *&]+\s*)?\{\s*$")


def blank_literals(line):
    line = re.sub(r'"(\\.|[^"\\])*"', '""', line)
    line = re.sub(r"'(\\.|[^'\\])*'", "''", line)
    return line.split("//")[0]


def functions(path):
    stack = []  # (line index, opens a function)
    for i, raw in enumerate(path.read_text(errors="replace").split("\n")):
        line = blank_literals(raw)
        for ch in line:
            if ch == "{":
                stack.append((i, bool(OPENS_FUNCTION.search(line))))
            elif ch == "}" and stack:
                start, is_function = stack.pop()
                if is_function and not any(f for _, f in stack):
                    yield i - start + 1, start + 1


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--max", type=int, default=100)
    ap.add_argument("--top", type=int, default=0)
    ap.add_argument("dirs", nargs="*")
    args = ap.parse_args()
    root = pathlib.Path(__file__).resolve().parents[2]
    dirs = [pathlib.Path(d) for d in args.dirs] or [root / "src", root / "tests"]
    found = []
    for d in dirs:
        for path in sorted(list(d.rglob("*.cpp")) + list(d.rglob("*.hpp"))):
            rel = path.relative_to(root).as_posix() if path.is_relative_to(root) else str(path)
            if rel in EXEMPT:
                continue
            found += [(n, rel, line) for n, line in functions(path)]
    found.sort(reverse=True)
    for n, rel, line in found[: args.top]:
        print(f"{n:5d} {rel}:{line}")
    over = [f for f in found if f[0] > args.max]
    for n, rel, line in over:
        print(f"check_function_lengths: {rel}:{line}: a function of {n} lines (at most {args.max})")
    if not over:
        print(f"check_function_lengths: {len(found)} functions, none over {args.max} lines")
    return 1 if over else 0


if __name__ == "__main__":
    sys.exit(main())
