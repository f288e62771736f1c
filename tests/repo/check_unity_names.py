#!/usr/bin/env python3
"""The unity build compiles 8 sources as one translation unit (CMakeLists.txt, NODECTL_UNITY), so
two sources that define the same name in an anonymous namespace of the same enclosing namespace
collide when CMake puts them into one batch: a redefinition error, or, for functions whose
parameters differ, a silent overload where a call may pick the other file's function. Which files
share a batch changes whenever a file is added, so this check refuses any such pair, batched
together today or not. A helper two files need belongs in a header, once.

It reads the sources as text: a line at column 0 inside `namespace {` that defines a function, a
type, an alias or a constant; the enclosing namespace is the last `namespace X {` opened at column
0. Usage: check_unity_names.py [DIR...] (default: this repository's src and tests/unit, the two
unity-built targets' sources, each checked on its own). Run by ctest (test "repo/unity_names")."""
import collections
import os
import re
import sys

here = os.path.dirname(os.path.abspath(__file__))
roots = sys.argv[1:] or [os.path.join(here, "..", "..", "src"), os.path.join(here, "..", "unit")]
function = re.compile(r"^(?:static\s+|inline\s+|constexpr\s+|\[\[nodiscard\]\]\s+)*[\w:<>,*&\s]+?[\s*&]+(\w+)\s*\([^;]*$")
type_ = re.compile(r"^(?:struct|class|enum(?:\s+class)?|union)\s+(\w+)\b(?!;)")
alias = re.compile(r"^using\s+(\w+)\s*=")
constant = re.compile(r"^(?:static\s+)?(?:inline\s+)?(?:constexpr|const)\s+[\w:<>\s*]+?\s\*?(\w+)\s*(?:\[[^\]]*\])?\s*=")
not_names = {"if", "for", "while", "switch", "return", "operator", "sizeof"}



def check(root):
    seen = collections.defaultdict(set)
    for dirpath, _, files in os.walk(root):
        for name in sorted(files):
            if not name.endswith(".cpp"):
                continue
            path = os.path.join(dirpath, name)
            rel = os.path.relpath(path, root)
            enclosing, anonymous = "", False
            with open(path, encoding="utf-8", errors="replace") as f:
                for line in f:
                    line = line.rstrip("\n")
                    m = re.match(r"^namespace\s+([\w:]+)\s*\{", line)
                    if m:
                        enclosing = m.group(1)
                        continue
                    if re.match(r"^namespace\s*\{", line):
                        anonymous = True
                        continue
                    if anonymous and re.match(r"^\}\s*//\s*namespace\s*$", line):
                        anonymous = False
                        continue
                    if not anonymous or not line or line[0] in " \t}#/":
                        continue
                    for rx in (type_, alias, constant, function):
                        m = rx.match(line)
                        if m and m.group(1) not in not_names:
                            seen[(enclosing, m.group(1))].add(rel)
                            break

    clashes = {k: v for k, v in seen.items() if len(v) > 1}
    for (ns, name), files in sorted(clashes.items()):
        print(f"check_unity_names: {ns or '(global)'}::(anonymous)::{name} is defined in {', '.join(sorted(files))}")
    if clashes:
        print(f"check_unity_names: {len(clashes)} name(s) defined privately in more than one source of {root}; "
              "rename them or move the one helper into a header")
        return False
    print(f"check_unity_names: {len(seen)} private names in {os.path.normpath(root)}, none defined twice in one namespace")
    return True


sys.exit(0 if all([check(r) for r in roots]) else 1)
