#!/usr/bin/env python3
"""Lists the longest function bodies in src/ (C++ and CUDA), longest first.

    scripts/longest_functions.py [--top N] [ROOT]

A function is a top-level (or namespace-level) brace block whose opening line ends a signature,
i.e. the text before `{` ends with `)`, `) const`, `) noexcept` or a trailing return type; lambdas
and class bodies are part of their enclosing function or skipped. The count is the lines from the
signature's `{` to the matching `}`. Braces in strings, characters and comments are ignored.
"""
import argparse
import pathlib
import re

SIGNATURE_END = re.compile(r"\)\s*(const)?\s*(noexcept)?\s*(override)?\s*(->\s*[\w:<>,\s*&]+)?\s*$")


def strip(text):
    """Blanks comments, strings and character literals (keeping newlines)."""
    out, i, n = [], 0, len(text)
    while i < n:
        c = text[i]
        if text.startswith("//", i):
            j = text.find("\n", i)
            j = n if j < 0 else j
            out.append(" " * (j - i))
            i = j
        elif text.startswith("/*", i):
            j = text.find("*/", i + 2)
            j = n if j < 0 else j + 2
            out.append(re.sub(r"[^\n]", " ", text[i:j]))
            i = j
        elif c in "\"'":
            j = i + 1
            while j < n and text[j] != c:
                j += 2 if text[j] == "\\" else 1
            out.append(" " * (min(j, n - 1) - i + 1))
            i = j + 1
        else:
            out.append(c)
            i += 1
    return "".join(out)


def functions(path):
    text = strip(path.read_text(errors="replace"))
    depth, stack, found = 0, [], []
    line = 1
    for i, c in enumerate(text):
        if c == "\n":
            line += 1
        elif c == "{":
            head = text[max(0, i - 400):i]
            head = head[max(head.rfind(";"), head.rfind("}"), head.rfind("{")) + 1:]
            is_function = bool(SIGNATURE_END.search(head.replace("\n", " "))) and not any(stack)
            if is_function:
                name = re.findall(r"([~\w:]+)\s*\(", head)
                stack.append((line, name[-1] if name else "?"))
            else:
                stack.append(None)
        elif c == "}" and stack:
            top = stack.pop()
            if top:
                found.append((line - top[0] + 1, top[1], f"{path}:{top[0]}"))
    return found


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("root", nargs="?", default=str(pathlib.Path(__file__).resolve().parent.parent / "src"))
    parser.add_argument("--top", type=int, default=15)
    args = parser.parse_args()
    root = pathlib.Path(args.root)
    rows = []
    for path in sorted(root.rglob("*")):
        if path.suffix in (".cpp", ".hpp", ".cu", ".cuh"):
            rows += functions(path)
    rows.sort(reverse=True)
    for length, name, where in rows[: args.top]:
        print(f"{length:5d}  {name}  {where.replace(str(root.parent) + '/', '')}")


if __name__ == "__main__":
    main()
