#!/usr/bin/env python3
"""Build Fixtures/corpus.txt once from Python standard-library docstrings.

The corpus is committed; generate.py only reads it, so the fixtures do not
depend on which Python version happens to be installed. This script is kept
for provenance only (output differs between Python versions).

Docstrings of the CPython standard library are (c) Python Software
Foundation, licensed under the PSF License Agreement.
"""
import importlib
import inspect
import os
import sys

MODULES = [
    "abc", "argparse", "base64", "bisect", "calendar", "collections", "contextlib",
    "copy", "csv", "dataclasses", "datetime", "decimal", "difflib", "enum",
    "fnmatch", "fractions", "functools", "getopt", "gettext", "glob", "hashlib",
    "heapq", "hmac", "html", "inspect", "io", "ipaddress", "itertools", "json",
    "logging", "mimetypes", "numbers", "operator", "optparse", "os", "pathlib",
    "pickle", "pprint", "queue", "random", "re", "sched", "secrets", "shlex",
    "shutil", "socket", "statistics", "string", "struct", "subprocess", "tarfile",
    "tempfile", "textwrap", "threading", "timeit", "tokenize", "traceback",
    "typing", "unittest", "urllib.parse", "uuid", "warnings", "weakref",
    "zipfile", "zlib",
]

TARGET_BYTES = 190_000

# Extra lines so that digits, tabs, accented letters, CJK and emoji appear
# (rare characters end up as byte-fallback tokens in the trained tokenizer).
EXTRA = """\
Numbers: 0 1 2 3 4 5 6 7 8 9 10 42 100 256 1024 65536 3.14159 2.71828 -17 1e-5 500000
Dates: 2023-07-18, 1999-12-31 23:59:59, version 3.11.7, port 8080, IPv4 192.168.0.1
Table\twith\ttabs\tbetween\tcolumns
name\tsize\tdtype
embed_tokens\t1000\tF16
lm_head\t1000\tF16
\tindented with a tab
        indented with eight spaces
Accents: café, naïve, résumé, façade, jalapeño, Zürich, São Paulo, Ångström, crème brûlée, déjà vu.
Français : « Les élèves étudient l'été à Genève. » Español: ¿Dónde está la biblioteca? Deutsch: Grüße aus Köln.
Polski: zażółć gęślą jaźń. Čeština: příliš žluťoučký kůň. Ελληνικά: γειά σου κόσμε. Русский: привет, мир.
中文：你好，世界。模型的权重。
日本語：こんにちは世界。東京
한국어: 안녕하세요 세계
Emoji: 🤖 🦙 🚀 ✨ 👍 🎉
The llama 🦙 says hello 👋 to the robot 🤖.
Math symbols: ∑ ∫ √ ∞ ≈ ≠ ≤ ≥ π µ Ω → ← ⇒ © ® ™ € £ ¥ °
"""


def docstrings(mod):
    out = []
    seen = set()

    def add(obj):
        doc = inspect.getdoc(obj)
        if doc and id(doc) not in seen and len(doc) > 40:
            seen.add(id(doc))
            out.append(doc.strip())

    add(mod)
    for name, obj in sorted(vars(mod).items()):
        if name.startswith("_"):
            continue
        if getattr(obj, "__module__", None) != mod.__name__:
            continue
        if inspect.isclass(obj) or inspect.isfunction(obj):
            add(obj)
            if inspect.isclass(obj):
                for mname, m in sorted(vars(obj).items()):
                    if not mname.startswith("_") and inspect.isfunction(m):
                        add(m)
    return out


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    parts = []
    size = 0
    for name in MODULES:
        try:
            mod = importlib.import_module(name)
        except Exception:
            continue
        for d in docstrings(mod):
            b = len(d.encode("utf-8")) + 2
            if size + b > TARGET_BYTES:
                break
            parts.append(d)
            size += b
        if size >= TARGET_BYTES - 2000:
            break
    text = "\n\n".join(parts) + "\n\n" + EXTRA
    with open(os.path.join(here, "corpus.txt"), "w", encoding="utf-8", newline="\n") as f:
        f.write(text)
    print(f"corpus.txt: {len(text.encode('utf-8'))} bytes, {text.count(chr(10))} lines, "
          f"python {sys.version.split()[0]}")


if __name__ == "__main__":
    main()
