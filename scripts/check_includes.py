#!/usr/bin/env python3
"""Include-direction check: a file includes its own layer or lower ones, never a higher one.

A file's layer is its first directory under src/ (python/src/ is the layer "python"). Every
`#include "dir/..."` whose dir is a layer must name the file's own layer or a lower rank; two
layers of the same rank are siblings and include neither each other. The public headers
(include/w4a16/, spelled "w4a16/...") are includable from every layer. docs/architecture.md
("Layers") says why the order is what it is.

  scripts/check_includes.py [--root DIR]   check DIR (default: this repository); exit 1 on a violation
  scripts/check_includes.py --self-test    plant violations in a scratch tree and check they are found
"""
import argparse
import os
import re
import subprocess
import sys
import tempfile

# The layers, lowest first: rank -> directories of that rank. A file may include a directory of
# a lower rank, or its own directory; directories of one rank are siblings (cpu and cuda are two
# backends, neither calls the other). Adding a directory under src/ means adding it here.
LAYERS = [
    ["common"],  # 0: checks, buffers, per-thread scratch
    ["format"],  # 1: QuantizedWeight, dtypes, the quantizer, enum names
    ["io"],  # 2: safetensors, importers
    ["cpu", "cuda"],  # 3: kernels, packing, executors (siblings)
    ["plan"],  # 4: devices, cost model, planner, the gemm entry points
    ["measure"],  # 5: timing, calibration, bench suites
    ["model", "capi"],  # 6: the Ascend model; the C API (siblings)
    ["cli", "python"],  # 7: the command-line tool; the Python binding (siblings)
]
RANK = {name: rank for rank, names in enumerate(LAYERS) for name in names}
PUBLIC = "w4a16"  # "w4a16/..." = include/w4a16/, the public headers: includable by every layer
# Where checked files live, and the layer a file there belongs to (None: its first directory).
SOURCE_ROOTS = [("src", None), (os.path.join("python", "src"), "python")]
EXTENSIONS = (".c", ".cc", ".cpp", ".cu", ".cuh", ".h", ".hpp", ".inc")
INCLUDE = re.compile(r'^\s*#\s*include\s*"([^"]+)"')


def sources(root):
    """(path relative to root, layer or None when the file sits in no known layer) of every source."""
    for base, fixed_layer in SOURCE_ROOTS:
        top = os.path.join(root, base)
        for directory, subdirs, files in os.walk(top):
            subdirs.sort()
            for name in sorted(files):
                if not name.endswith(EXTENSIONS):
                    continue
                path = os.path.relpath(os.path.join(directory, name), root)
                parts = os.path.relpath(path, base).split(os.sep)
                yield path, fixed_layer or (parts[0] if len(parts) > 1 else None)


def included_layer(root, path, include):
    """The layer an include names; PUBLIC; or None for a header outside src/ (a dependency)."""
    first = include.split("/")[0]
    if first == PUBLIC or first in RANK:
        return first
    # A relative include ("x.hpp", "../plan/x.hpp"): where it lands from the including file.
    target = os.path.normpath(os.path.join(os.path.dirname(path), include))
    parts = target.split(os.sep)
    if os.path.exists(os.path.join(root, target)) and len(parts) > 2 and parts[0] == "src":
        return parts[1]
    if os.path.isdir(os.path.join(root, "src", first)):
        return first  # a directory of src/ missing from LAYERS: reported as unknown
    return None


def violations(root):
    """Yields (file:line, message) for every include against the layer order."""
    for path, layer in sources(root):
        if layer is None:
            yield path, "a source outside any layer directory"
            continue
        if layer not in RANK:
            yield path, f"{os.path.dirname(path)} is not in the layer table (LAYERS in scripts/check_includes.py)"
            continue
        with open(os.path.join(root, path), encoding="utf-8", errors="replace") as f:
            for number, line in enumerate(f, 1):
                match = INCLUDE.match(line)
                if not match:
                    continue
                include = match.group(1)
                target = included_layer(root, path, include)
                if target is None or target == PUBLIC or target == layer:
                    continue
                mine = f"{layer} ({RANK[layer]})"
                if target not in RANK:
                    yield f"{path}:{number}", f'{mine} includes "{include}": src/{target} is not in the layer table'
                elif RANK[target] > RANK[layer]:
                    yield f"{path}:{number}", f'{mine} includes "{include}": {target} ({RANK[target]}) is a higher layer'
                elif RANK[target] == RANK[layer]:
                    yield f"{path}:{number}", f'{mine} includes "{include}": {target} ({RANK[target]}) is a sibling'


def check(root):
    found = list(violations(root))
    for where, message in found:
        print(f"{where}: {message}")
    if found:
        sys.stdout.flush()
        print(f"include direction: {len(found)} problem(s) with the layer order (docs/architecture.md, Layers)",
              file=sys.stderr)
        return 1
    print("include direction: every include goes to its own layer or a lower one")
    return 0


def self_test():
    """Runs this script on a scratch tree with planted violations, then on the same tree mended."""
    planted = {
        "src/plan/y.hpp": '#include "cpu/ok.hpp"\n#include "w4a16/w4a16.hpp"\n#include "common/c.hpp"\n',
        "src/cpu/ok.hpp": '#include "format/f.hpp"\n#include <vector>\n',
        "src/cpu/x.cpp": '#include "cpu/ok.hpp"\n#include "plan/y.hpp"\n',  # back-include
        "src/cpu/s.cpp": '#include "cuda/k.hpp"\n',  # sibling
        "src/io/r.cpp": '#include "../measure/m.hpp"\n',  # relative back-include
        "src/measure/m.hpp": '#include "plan/y.hpp"\n',
        "python/src/ext.cpp": '#include "w4a16/w4a16.hpp"\n#include "cli/main.hpp"\n',  # sibling
    }
    expected = [
        'src/cpu/x.cpp:2: cpu (3) includes "plan/y.hpp": plan (4) is a higher layer',
        'src/cpu/s.cpp:1: cpu (3) includes "cuda/k.hpp": cuda (3) is a sibling',
        'src/io/r.cpp:1: io (2) includes "../measure/m.hpp": measure (5) is a higher layer',
        'python/src/ext.cpp:2: python (7) includes "cli/main.hpp": cli (7) is a sibling',
    ]
    me = [sys.executable, os.path.abspath(__file__), "--root"]
    with tempfile.TemporaryDirectory() as root:
        for path, text in planted.items():
            os.makedirs(os.path.join(root, os.path.dirname(path)), exist_ok=True)
            with open(os.path.join(root, path), "w", encoding="utf-8") as f:
                f.write(text)
        bad = subprocess.run(me + [root], capture_output=True, text=True)
        lines = bad.stdout.splitlines()
        errors = [f"missing: {line}" for line in expected if line not in lines]
        errors += [f"unexpected: {line}" for line in lines if line not in expected]
        if bad.returncode != 1:
            errors.append(f"exit status {bad.returncode} on the planted tree, expected 1: {bad.stderr.strip()}")
        for path in ("src/cpu/x.cpp", "src/cpu/s.cpp", "src/io/r.cpp", "python/src/ext.cpp"):
            os.remove(os.path.join(root, path))
        good = subprocess.run(me + [root], capture_output=True, text=True)
        if good.returncode != 0:
            errors.append(f"exit status {good.returncode} on the mended tree: {good.stdout.strip()}")
    for error in errors:
        print(f"self-test: {error}", file=sys.stderr)
    if errors:
        return 1
    print(f"self-test: the {len(expected)} planted includes are reported, the mended tree passes")
    return 0


def main(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", default=os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                        help="the tree to check (default: this repository)")
    parser.add_argument("--self-test", action="store_true", help="check the checker on planted violations")
    args = parser.parse_args(argv)
    return self_test() if args.self_test else check(args.root)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
