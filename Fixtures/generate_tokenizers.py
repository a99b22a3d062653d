#!/usr/bin/env python3
"""Tokenizer fixtures for ckpt (issue 13): expected ids and texts from the reference libraries only.

    .venv/bin/python Fixtures/generate_tokenizers.py            # what `make fixtures` runs
    .venv/bin/python Fixtures/generate_tokenizers.py --corpus   # rebuild tokenizers/corpus.txt first (provenance)

Nothing here is computed with ckpt. Reference per kind: `sentencepiece` 0.2.3 for tokenizer.model files and GGUF
`llama` vocabularies, `tokenizers` 0.23.3 for tokenizer.json files and GGUF `gpt2` vocabularies, `transformers`
5.24.0 for the tokenizer.json-only tiny model's greedy continuation. Outputs (all under Fixtures/tokenizers/):

  corpus.txt                      >= 1 MiB of real text, one string per line (built once with --corpus, committed)
  spm-*.model                     variants of Fixtures/tokenizer/tokenizer.model edited through the model proto
  *.tokenizer.json                SentencePiece-converted layouts and trained byte-level BPEs (LLaMA-3, Qwen2)
  *.gguf                          tokenizer-only GGUF files written by gguf-py from those tokenizers
  expected/cases.json             the tricky strings (and byte runs for decode cases), shared by every kind
  expected/<kind>.json            per string: ids, ids with special tokens, tokens, decodes; decode-only cases
  expected/<kind>.corpus.bin      per corpus line and per 256-line block: hashes of ids + decoded text (below)
  expected/<kind>.long.json       token count and hash for long one-word inputs built by recipe (long_inputs)
  expected/unicode.json           code point classes as tokenizers' Oniguruma (\\p{L}, \\p{N}, \\s) and regex-syntax
                                  (\\w) see them
  expected/tiny-llama-json.greedy.json  greedy continuation of Fixtures/tiny-llama-json (transformers)
  ../tiny-llama-json/             the tiny LLaMA with tokenizer.json only (weights copied from tiny-llama)
"""

import os

os.environ["TOKENIZERS_PARALLELISM"] = "false"
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ["TRANSFORMERS_VERBOSITY"] = "error"
os.environ["OMP_NUM_THREADS"] = "1"

import argparse  # noqa: E402
import gettext  # noqa: E402
import glob  # noqa: E402
import hashlib  # noqa: E402
import importlib  # noqa: E402
import inspect  # noqa: E402
import json  # noqa: E402
import shutil  # noqa: E402
import struct  # noqa: E402
import sys  # noqa: E402
import unicodedata  # noqa: E402
from pathlib import Path  # noqa: E402

import gguf  # noqa: E402
import sentencepiece as spm  # noqa: E402
import sentencepiece.sentencepiece_model_pb2 as sp_pb  # noqa: E402
import tokenizers  # noqa: E402
from tokenizers import (AddedToken, Regex, Tokenizer, decoders, models, normalizers,  # noqa: E402
                        pre_tokenizers, processors, trainers)

HERE = Path(__file__).resolve().parent
OUT = HERE / "tokenizers"
EXP = OUT / "expected"
SPM_MODEL = HERE / "tokenizer" / "tokenizer.model"
TINY = HERE / "tiny-llama"

LLAMA3_PATTERN = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*"
                  r"|\s*[\r\n]+|\s+(?!\S)|\s+")
QWEN2_PATTERN = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"
                 r"|\s*[\r\n]+|\s+(?!\S)|\s+")

# ---------------------------------------------------------------------------------------------------------------
# corpus (built once with --corpus; committed)

DOC_MODULES = [
    "abc", "argparse", "ast", "asyncio", "base64", "bisect", "calendar", "cmd", "code", "codecs", "collections",
    "concurrent.futures", "configparser", "contextlib", "copy", "csv", "ctypes", "dataclasses", "datetime",
    "decimal", "difflib", "dis", "doctest", "email", "email.message", "enum", "filecmp", "fileinput", "fnmatch",
    "fractions", "ftplib", "functools", "getopt", "gettext", "glob", "gzip", "hashlib", "heapq", "hmac", "html",
    "html.parser", "http.client", "http.server", "imaplib", "inspect", "io", "ipaddress", "itertools", "json",
    "logging", "logging.handlers", "lzma", "mailbox", "mimetypes", "multiprocessing", "numbers", "operator",
    "optparse", "os", "pathlib", "pdb", "pickle", "pickletools", "platform", "plistlib", "poplib", "pprint",
    "profile", "pstats", "queue", "random", "re", "reprlib", "sched", "secrets", "selectors", "shelve", "shlex",
    "shutil", "smtplib", "socket", "socketserver", "sqlite3", "ssl", "statistics", "string", "struct",
    "subprocess", "tarfile", "tempfile", "textwrap", "threading", "timeit", "tokenize", "trace", "traceback",
    "turtle", "typing", "unittest", "unittest.mock", "urllib.parse", "urllib.request", "uuid", "warnings",
    "wave", "weakref", "xml.dom.minidom", "xml.etree.ElementTree", "zipfile", "zipimport", "zlib",
]
MO_LANGS = ["de", "fr", "es", "it", "pt_BR", "nl", "sv", "pl", "cs", "tr", "vi", "ru", "uk", "bg", "el", "ka", "hy",
            "he", "ar", "fa", "hi", "bn", "ta", "te", "th", "ja", "zh_CN", "zh_TW", "ko", "am", "km", "my"]
MO_DOMAINS = ["glib20.mo", "gtk20.mo", "iso_3166-1.mo", "iso_639-2.mo", "coreutils.mo", "gdk-pixbuf.mo"]


DOC_BYTES = 500_000     # Python docstrings
LANG_BYTES = 13_000     # translated messages per language


def size(strings) -> int:
    return sum(len(x.encode("utf-8")) + 1 for x in strings)


def build_corpus() -> str:
    parts = []
    seen = set()
    for p in sorted(glob.glob("/usr/share/common-licenses/*")):
        real = os.path.realpath(p)
        if real in seen or not os.path.isfile(real):
            continue
        seen.add(real)
        parts.append(Path(real).read_text(encoding="utf-8", errors="replace"))
    docs = []
    for name in DOC_MODULES:
        try:
            mod = importlib.import_module(name)
        except Exception:
            continue
        for _, obj in sorted(vars(mod).items(), key=lambda kv: kv[0]):
            if getattr(obj, "__module__", None) != mod.__name__:
                continue
            if inspect.isclass(obj) or inspect.isfunction(obj):
                d = inspect.getdoc(obj)
                if d and len(d) > 40 and d not in seen and size(docs) < DOC_BYTES:
                    seen.add(d)
                    docs.append(d)
    parts.append("\n".join(docs))
    multi = []
    for lang in MO_LANGS:
        mine = []
        for dom in MO_DOMAINS:
            path = f"/usr/share/locale/{lang}/LC_MESSAGES/{dom}"
            if not os.path.exists(path):
                continue
            with open(path, "rb") as f:
                t = gettext.GNUTranslations(f)
            for k, v in sorted(t._catalog.items(), key=lambda kv: str(kv[0])):
                if isinstance(v, str) and v and k and v not in seen and len(v) > 3 and size(mine) < LANG_BYTES:
                    seen.add(v)
                    mine.append(v.replace("\r", ""))
        multi += mine
    parts.append("\n".join(multi))
    text = "\n".join(parts)
    # Real text in decomposed form too (NFD): Vietnamese, French, Korean (Hangul to jamo) lines.
    lines = [ln for ln in text.split("\n") if ln.strip()]
    nfd = [unicodedata.normalize("NFD", ln) for ln in lines if unicodedata.normalize("NFD", ln) != ln][:400:2]
    text = "\n".join(lines + nfd) + "\n"
    return text


# ---------------------------------------------------------------------------------------------------------------
# the tricky strings

U17_LETTERS = "\u088f\u0c5c\ua7ce\ua7cf\ua7d2"          # age 17.0 (Swift has them as letters; Onig 16.0 does not)
U17_DIGITS = "\U00011de0\U00011de1\U00011de2"
CASES = [
    "", " ", "  ", "   ", "\t", "\n", "\r\n", "\n\n\n", " \n ", "a", "Hello world", "Hello", " Hello", "  Hello",
    "Hello ", "hello  world", "a  b", "a   b", "I believe the meaning of life is", "This is an example.",
    "Return a new list containing all items from the", "Simply put, the theory of relativity states that ",
    # Unicode equivalents and look-alikes
    "e\u0301", "\u00e9", "caf\u00e9 cafe\u0301", "\u212a", "K", "\u037e", ";", "\u2126", "\u03a9", "A\u030a",
    "\u212b", "\u00c5", "\u1100\u1161", "\uac00", "\u1f71", "\u03ac", "\u1f77 \u03af", "\ufb01 \uff21\uff22\uff23",
    "na\u00efve", "nai\u0308ve", "na\u0131ve", "Stra\u00dfe", "\u0130stanbul",
    # spaces before combining marks, ZWJ, variation selectors; emoji
    " \u0301", "a \u0301b", " \u0301x", "x \u200dy", "x\u200dy", " \ufe0f", "\u2764\ufe0f", "\U0001f44d\U0001f3fd",
    "\U0001f468\u200d\U0001f469\u200d\U0001f467\u200d\U0001f466", "\U0001f1eb\U0001f1f7\U0001f1e9\U0001f1ea",
    "emoji \U0001f916\U0001f999\U0001f680\U0001f389", "Z\u0338\u0321a\u0337l\u0336g\u0335o",
    # whitespace of every kind
    "a\tb", "\tfoo", "\u00a0x", "a\u00a0\u00a0b", "line one\nline two\n", "line1\r\nline2", "indent\n    code",
    "():\n\n", "\u3000ideographic space", "x\u2028y\u2029z", "a\u0085b", "a\u000bb\u000cc", "\u001c\u001d\u001e\u001f",
    "\u180e\u200b\ufeff", "end   ", "   start", " " * 40, "\n" * 12, "a" * 300, "ab" * 120,
    # digits
    "1", "12", "123", "1234567", "12345678901234567890", " 1", "1 2 3", "3.14159", "v1.2.3", "x1y22z333w4444",
    "\u0663\u0664\u0665\u0666\u0667", "\u216b", "\u00bd", "2024-06-01", "0x1F600",
    # contractions
    "I'M", "You'RE", "we'Ve", "they'LL", "it'S", "don'T", "he'D", "'s", "x'sy", "'\u017f", "'\u017ft", "O'Neil",
    "rock'n'roll", "'''", "\u2019s", "'clock", "can't won't shan't",
    # scripts
    "\u4e2d\u6587\uff1a\u4f60\u597d\uff0c\u4e16\u754c\u3002", "\u65e5\u672c\u8a9e\u306e\u30c6\u30ad\u30b9\u30c8",
    "\ud55c\uad6d\uc5b4 \uc548\ub155\ud558\uc138\uc694", "\U00020000\U00020001", "\u05e9\u05dc\u05d5\u05dd \u05e2\u05d5\u05dc\u05dd",
    "\u0645\u0631\u062d\u0628\u0627 \u0628\u0627\u0644\u0639\u0627\u0644\u0645", "\u0e2a\u0e27\u0e31\u0e2a\u0e14\u0e35",
    "\u0928\u092e\u0938\u094d\u0924\u0947 \u0926\u0941\u0928\u093f\u092f\u093e", "\U0001d518\U0001d52b\U0001d526",
    "Ti\u1ebfng Vi\u1ec7t", "Ti\u00ea\u0301ng Vi\u00ea\u0323t", "\u0393\u03b5\u03b9\u03ac \u03c3\u03bf\u03c5",
    U17_LETTERS, "x" + U17_LETTERS + "y", U17_DIGITS, "a\u1df6\u0323", "a\u0301\U00011442", "a\U0001e94a\u0301",
    "a\u1ac1\u0323",
    # special tokens inside text
    "<s>", "</s>", "<unk>", "a <s> b", "<s>Hello", "Hello</s>", "<s> literal special tokens </s> <unk>",
    "<|begin_of_text|>Hi", "<|eot_id|>", "<|eot_id", "<|EOT_ID|>", " <|eot_id|> ", "<|eot_id|><|eot_id|>",
    "<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>", "<|im_start|>user\nhi<|im_end|>\n",
    "<|endoftext|>", "text<|endoftext|>more", "<tool_call>x</tool_call>",
    # flags tokenizer: single_word, lstrip/rstrip, normalized, overlapping and non-ASCII added tokens
    "qzx", "qzx!", "qzxs", "qzx_", "qzx\u00e9", "\u00e9qzx", "qzx1", "a qzx b", "a <|l|> b", "a  <|l|>  b",
    "a <|r|>  b", "<|r|>\n\nx", "a <|lr|> b", "<|eot|> <|eot_id|>", "na\u00efve tok\u00e9n", "\u2581 <x> <x>",
    "<x>", "a<x>b", "\u2581 already escaped \u2581\u2581", "\u0001 control \u007f", "nul\u0000byte",
    # more of everything
    "Hello, world!", "The quick brown fox jumps over the lazy dog.", "    four spaces", "\t\tdouble tab",
    "tab\tseparated\tvalues", "a\n\nb", "x\r\ny\rz", "\U0001f4a9", "caf\u00e9\u0301", "\ufb00 \uff21",
    "\u2460\u2461\u2462", "x\u00b2", "\u0661\u0662\u0663", "<s><s>", "</s></s>", "<<s>>",
    "<|begin_of_text|><|begin_of_text|>", "<|reserved_special_token_5|>", "<|im_start|><|im_end|>", "I'd've",
    "y'all'll", "\u210c \u01c4 \u01c5 \u02b0 \u3006 \u2177", "mixed123abc456", "1,000,000.00", "$12.99",
    "#hashtag @mention", "http://example.com/path?q=1&r=2", "C:\\Windows\\path", "  \t  \n  ", "end.\n",
    "\u00bfQu\u00e9?", "\u00abquotes\u00bb", "a\u00adb", "\ue000", "\U0010ffff", "\ufffd", "\u0378",
]

# Long inputs (one BPE word of thousands of symbols), defined by recipe so that only their hashes are stored; the
# Swift tests build the same strings.
def long_inputs(whole: str):
    nospace = "".join(c for c in whole[:40000] if c not in " \n")
    return {
        "spaces-10000": " " * 10000, "newlines-5000": "\n" * 5000, "tabs-5000": "\t" * 5000, "a-9000": "a" * 9000,
        "ab-6000": "ab" * 6000, "digits-9000": "1234567890" * 900, "dashes-8000": "-" * 8000,
        "nospace-40000": nospace, "word-spaces-300": ("word" + " " * 37) * 300,
    }


# Decode-only cases: byte runs (invalid UTF-8 included) as byte tokens, with control ids around them.
BYTE_RUNS = [[0xE2, 0x96], [0xF0, 0x9F, 0x98], [0xC0, 0x80], [0xED, 0xA0, 0x80], [0xF4, 0x90, 0x80, 0x80],
             [0xE2, 0x96, 0x81, 0xE2], [0x41, 0x80, 0x80, 0x42], [0xE2, 0x96, 0x81], [0xEF, 0xBF, 0xBD],
             [0xFF], [0x20, 0x41], [0xF0, 0x9F, 0x98, 0x80]]

# ---------------------------------------------------------------------------------------------------------------
# helpers


def fnv64(b: bytes) -> int:
    h = 0xcbf29ce484222325
    for x in b:
        h ^= x
        h = (h * 0x100000001b3) & 0xFFFFFFFFFFFFFFFF
    return h


def write_json(path: Path, obj):
    """Compact JSON: one top-level member per line, arrays on one line."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(obj, dict):
        body = ",\n".join(json.dumps(k, ensure_ascii=False) + ": " + json.dumps(v, ensure_ascii=False,
                                                                                 separators=(",", ":"))
                          for k, v in obj.items())
        text = "{\n" + body + "\n}\n"
    else:
        text = json.dumps(obj, ensure_ascii=False, separators=(",", ":")) + "\n"
    path.write_text(text, encoding="utf-8", newline="\n")


def corpus_lines(text: str):
    return [ln for ln in text.split("\n") if ln]


BLOCK = 256


def line_record(ids, decoded: str) -> bytes:
    return b"".join(struct.pack("<I", i) for i in ids) + b"\xff\xff\xff\xff" + decoded.encode("utf-8")


def write_long_expectations(name: str, whole: str, encode, decode):
    out = {}
    for k, text in long_inputs(whole).items():
        ids = encode(text)
        out[k] = [len(ids), "%016x" % fnv64(line_record(ids, decode(ids)))]
    write_json(EXP / f"{name}.long.json", out)


def write_corpus_expectations(name: str, lines, whole: str, encode, decode):
    """Binary expectations (little-endian), compact but exact:
    magic "CKTK", u32 version 1, u32 line count, u32 block size (256), u32 whole-text token count,
    u64 FNV-1a-64 of the whole text's record, then u16 per line (low 16 bits of FNV-1a-64 of the line's record:
    localises a difference), then u64 per block of 256 lines (FNV-1a-64 of the block's records concatenated: makes a
    difference certain). A record is the ids as u32 LE, 0xFFFFFFFF, then the decoded text's UTF-8."""
    ids = encode(whole)
    head = b"CKTK" + struct.pack("<IIII", 1, len(lines), BLOCK, len(ids)) + struct.pack("<Q", fnv64(line_record(ids, decode(ids))))
    per_line, blocks, block = [], [], b""
    total = 0
    for k, ln in enumerate(lines):
        ids = encode(ln)
        total += len(ids)
        r = line_record(ids, decode(ids))
        per_line.append(struct.pack("<H", fnv64(r) & 0xFFFF))
        block += r
        if (k + 1) % BLOCK == 0 or k + 1 == len(lines):
            blocks.append(struct.pack("<Q", fnv64(block)))
            block = b""
    (EXP / f"{name}.corpus.bin").write_bytes(head + b"".join(per_line) + b"".join(blocks))
    return total


def bytes_to_unicode():
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, map(chr, cs)))


# ---------------------------------------------------------------------------------------------------------------
# SentencePiece (tokenizer.model) kinds


def load_proto(path: Path):
    m = sp_pb.ModelProto()
    m.ParseFromString(path.read_bytes())
    return m


def spm_variants():
    """Variants of the tiny LLaMA tokenizer.model, edited through the proto (sentencepiece loads them as is)."""
    base = load_proto(SPM_MODEL)
    out = {}
    # user-defined pieces (matched whole, never merged) and unused pieces (split back into what formed them)
    m = load_proto(SPM_MODEL)
    T = sp_pb.ModelProto.SentencePiece
    for piece in ["<|user|>", "<x>", "qzx", "\u2581\u2581<x>"]:
        p = m.pieces.add()
        p.piece, p.score, p.type = piece, 0.0, T.USER_DEFINED
    by_piece = {p.piece: i for i, p in enumerate(m.pieces)}
    for piece in ["\u2581the", "in", "\u2581a", "re"]:
        if piece in by_piece:
            m.pieces[by_piece[piece]].type = T.UNUSED
    out["spm-userdefined"] = m
    m = load_proto(SPM_MODEL)
    m.trainer_spec.byte_fallback = False
    keep = [p for p in m.pieces if p.type != T.BYTE]
    del m.pieces[:]
    m.pieces.extend(keep)
    out["spm-nofallback"] = m
    m = load_proto(SPM_MODEL)
    m.normalizer_spec.add_dummy_prefix = False
    out["spm-nodummy"] = m
    m = load_proto(SPM_MODEL)
    m.normalizer_spec.remove_extra_whitespaces = True
    out["spm-extraws"] = m
    paths = {}
    for name, proto in out.items():
        p = OUT / f"{name}.model"
        p.write_bytes(proto.SerializeToString())
        paths[name] = p
    assert base.trainer_spec.model_type == sp_pb.TrainerSpec.BPE
    return paths


def train_unigram(text: str):
    import io
    buf = io.BytesIO()
    spm.SentencePieceTrainer.train(sentence_iterator=iter(corpus_lines(text)[:3000]), model_writer=buf,
                                   model_type="unigram", vocab_size=300, num_threads=1, minloglevel=2,
                                   normalization_rule_name="identity",
                                   input_sentence_size=0, shuffle_input_sentence=False)
    (OUT / "spm-unigram.model").write_bytes(buf.getvalue())


def spm_kind(name: str, path: Path, lines, whole: str, corpus: bool):
    sp = spm.SentencePieceProcessor(model_file=str(path))
    bos, eos = sp.bos_id(), sp.eos_id()
    # decoded = decode(ids); decoded_special = decode([BOS] + ids + [EOS]) (control ids are skipped)
    cases = {"ids": [], "ids_special": [], "tokens": [], "decoded": [], "decoded_special": []}
    for s in CASES:
        ids = sp.encode(s)
        cases["ids"].append(ids)
        cases["ids_special"].append([bos] + ids)
        cases["tokens"].append([sp.id_to_piece(i) for i in ids])
        cases["decoded"].append(sp.decode(ids))
        cases["decoded_special"].append(sp.decode([bos] + ids + [eos]))
    decodes = []
    byte_id = {sp.id_to_piece(i): i for i in range(sp.get_piece_size()) if sp.is_byte(i)}
    for run in BYTE_RUNS:
        if not byte_id:
            break
        ids = [byte_id["<0x%02X>" % b] for b in run]
        for seq in (ids, [bos] + ids, ids + [eos], [bos] + sp.encode(" Hi") + ids, sp.encode("x") + ids):
            decodes.append({"ids": seq, "decoded": sp.decode(seq)})
    for seq in ([bos, eos], [bos, bos] + sp.encode("Hello"), sp.encode("Hello") + [bos] + sp.encode(" world"),
                [sp.unk_id()], [bos, sp.unk_id()] + sp.encode("a"), sp.encode("  x"), [bos] + sp.encode("  x"),
                [sp.piece_to_id("\u2581")] * 3 + sp.encode("y")):
        decodes.append({"ids": seq, "decoded": sp.decode(seq)})
    write_json(EXP / f"{name}.json", {"reference": f"sentencepiece {spm.__version__}",
                                       "vocab_size": sp.get_piece_size(), "bos": bos, "eos": eos,
                                       **cases, "decodes": decodes})
    write_long_expectations(name, whole, sp.encode, sp.decode)
    if not corpus:
        return {}
    total = write_corpus_expectations(name, lines, whole, sp.encode, sp.decode)
    return {"corpus_tokens": total}


# ---------------------------------------------------------------------------------------------------------------
# tokenizer.json kinds


def spm_json_files():
    """SentencePiece-converted tokenizer.json layouts built from tokenizer.model's pieces with tokenizers alone:
    merges = every split of a NORMAL piece into two NORMAL pieces, ranked by (-score, piece id, split point)."""
    m = load_proto(SPM_MODEL)
    T = sp_pb.ModelProto.SentencePiece
    vocab = {p.piece: i for i, p in enumerate(m.pieces)}
    normal = {p.piece: i for i, p in enumerate(m.pieces) if p.type == T.NORMAL}
    merges = []
    for piece, i in normal.items():
        for k in range(1, len(piece)):
            a, b = piece[:k], piece[k:]
            if a in normal and b in normal:
                merges.append((-m.pieces[i].score, i, k, a, b))
    merges.sort()
    merges = [(a, b) for _, _, _, a, b in merges]
    specials = [AddedToken(c, special=True, normalized=False) for c in ("<unk>", "<s>", "</s>")]
    template = processors.TemplateProcessing(single="<s> $A", pair="<s> $A <s> $B", special_tokens=[("<s>", 1)])
    spm_decoder = decoders.Sequence([decoders.Replace("\u2581", " "), decoders.ByteFallback(), decoders.Fuse(),
                                     decoders.Strip(" ", 1, 0)])
    files = {}
    # legacy: normalizer Prepend + Replace, no pre-tokenizer
    t = Tokenizer(models.BPE(vocab, merges, byte_fallback=True, fuse_unk=True, unk_token="<unk>"))
    t.add_special_tokens(specials)
    t.normalizer = normalizers.Sequence([normalizers.Prepend("\u2581"), normalizers.Replace(" ", "\u2581")])
    t.post_processor = template
    t.decoder = spm_decoder
    files["spm-legacy-json"] = t
    # Metaspace(first), split false (transformers 5 layout, score-ranked merges)
    t = Tokenizer(models.BPE(vocab, merges, byte_fallback=True, fuse_unk=True, unk_token=None))
    t.add_special_tokens(specials)
    t.pre_tokenizer = pre_tokenizers.Metaspace(replacement="\u2581", prepend_scheme="first", split=False)
    t.post_processor = template
    t.decoder = spm_decoder
    files["spm-metaspace-json"] = t
    # Metaspace(always), split true, no byte fallback (unknown characters fuse into <unk>), Metaspace decoder
    t = Tokenizer(models.BPE(vocab, merges, byte_fallback=False, fuse_unk=True, unk_token="<unk>"))
    t.add_special_tokens(specials)
    t.pre_tokenizer = pre_tokenizers.Metaspace(replacement="\u2581", prepend_scheme="always", split=True)
    t.post_processor = template
    t.decoder = decoders.Metaspace(replacement="\u2581", prepend_scheme="always", split=True)
    files["spm-split-json"] = t
    # Metaspace(never), split true, with the Metaspace decoder (cases only)
    t = Tokenizer(models.BPE(vocab, merges, byte_fallback=True, fuse_unk=True, unk_token=None))
    t.add_special_tokens(specials)
    t.pre_tokenizer = pre_tokenizers.Metaspace(replacement="\u2581", prepend_scheme="never", split=True)
    t.post_processor = template
    t.decoder = decoders.Metaspace(replacement="\u2581", prepend_scheme="never", split=True)
    files["spm-never-json"] = t
    paths = {}
    for name, tok in files.items():
        p = OUT / f"{name.removesuffix('-json')}.tokenizer.json"
        tok.save(str(p))
        paths[name] = p
    return paths


LLAMA31_SPECIALS = (["<|begin_of_text|>", "<|end_of_text|>", "<|reserved_special_token_0|>",
                     "<|reserved_special_token_1|>", "<|finetune_right_pad_id|>", "<|reserved_special_token_2|>",
                     "<|start_header_id|>", "<|end_header_id|>", "<|eom_id|>", "<|eot_id|>", "<|python_tag|>"]
                    + [f"<|reserved_special_token_{i}|>" for i in range(3, 248)])
IGNORE_MERGES_WORDS = [" Swiftly", " tokenizer", " ckpt", " llama", " Vicuna", "checkpoint", " sentencepiece",
                       " unreachable", " 2024", "\u0120"]


def train_bytelevel(lines, pattern: str, vocab_size: int, qwen: bool) -> Tokenizer:
    extra = {"continuing_subword_prefix": "", "end_of_word_suffix": ""} if qwen else {}
    model = models.BPE(ignore_merges=not qwen, byte_fallback=False, fuse_unk=False, **extra)
    t = Tokenizer(model)
    if qwen:
        t.normalizer = normalizers.NFC()
    t.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(pattern), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=False, use_regex=False)])
    t.decoder = decoders.ByteLevel(add_prefix_space=False, trim_offsets=False, use_regex=False)
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, min_frequency=2, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), special_tokens=[])
    t.train_from_iterator(lines, trainer)
    return t


def bytelevel_files(lines):
    b2u = bytes_to_unicode()
    paths = {}
    # LLaMA-3 style: ignore_merges, whole-word entries reachable only through it, the 256 LLaMA-3.1 specials
    t = train_bytelevel(lines, LLAMA3_PATTERN, 3000, qwen=False)
    j = json.loads(t.to_str())
    vocab = j["model"]["vocab"]
    for w in IGNORE_MERGES_WORDS:
        key = "".join(b2u[b] for b in w.encode("utf-8"))
        if key not in vocab:
            vocab[key] = len(vocab)
    t = Tokenizer.from_str(json.dumps(j, ensure_ascii=False))
    t.add_special_tokens([AddedToken(c, special=True, normalized=False) for c in LLAMA31_SPECIALS])
    bos = t.token_to_id("<|begin_of_text|>")
    t.post_processor = processors.Sequence([
        processors.ByteLevel(trim_offsets=False),
        processors.TemplateProcessing(single="<|begin_of_text|> $A", pair="<|begin_of_text|> $A <|begin_of_text|> $B",
                                      special_tokens=[("<|begin_of_text|>", bos)])])
    p = OUT / "llama3.tokenizer.json"
    t.save(str(p))
    paths["llama3-json"] = p
    # flags: lstrip, rstrip, single_word, normalized, prefix-overlapping and non-ASCII added tokens
    t.add_tokens([AddedToken("<|l|>", lstrip=True, normalized=False, special=True),
                  AddedToken("<|r|>", rstrip=True, normalized=False, special=True),
                  AddedToken("<|lr|>", lstrip=True, rstrip=True, normalized=False, special=False),
                  AddedToken("qzx", single_word=True, normalized=False, special=False),
                  AddedToken("<|eot|>", normalized=False, special=True),
                  AddedToken("<x>", normalized=True, special=False),
                  AddedToken("na\u00efve", normalized=False, special=False),
                  AddedToken("tok\u00e9n", normalized=True, special=False)])
    p = OUT / "llama3-flags.tokenizer.json"
    t.save(str(p))
    paths["llama3-flags-json"] = p
    # Qwen2 style: NFC, single digits, no ignore_merges, no BOS, <|endoftext|>, <|im_start|>, <|im_end|>
    t = train_bytelevel(lines, QWEN2_PATTERN, 2000, qwen=True)
    t.add_special_tokens([AddedToken(c, special=True, normalized=False)
                          for c in ("<|endoftext|>", "<|im_start|>", "<|im_end|>")])
    t.add_tokens([AddedToken("<tool_call>", special=False, normalized=False),
                  AddedToken("</tool_call>", special=False, normalized=False)])
    t.post_processor = processors.ByteLevel(trim_offsets=False)
    p = OUT / "qwen2.tokenizer.json"
    t.save(str(p))
    paths["qwen2-json"] = p
    return paths


def json_kind(name: str, path: Path, lines, whole: str, split_pattern=None, corpus=True):
    t = Tokenizer.from_file(str(path))
    # decoded = decode(ids_special, skip_special_tokens=True); decoded_special = the same with False
    cases = {"ids": [], "ids_special": [], "tokens": [], "decoded": [], "decoded_special": []}
    if split_pattern:
        cases["pre_tokens"] = []
    for s in CASES:
        e = t.encode(s, add_special_tokens=False)
        es = t.encode(s, add_special_tokens=True)
        cases["ids"].append(e.ids)
        cases["ids_special"].append(es.ids)
        cases["tokens"].append([t.id_to_token(i) for i in e.ids])   # convert_ids_to_tokens
        cases["decoded"].append(t.decode(es.ids, skip_special_tokens=True))
        cases["decoded_special"].append(t.decode(es.ids, skip_special_tokens=False))
        if split_pattern:
            cases["pre_tokens"].append([p for p, _ in pre_tokenizers.Split(Regex(split_pattern), behavior="isolated")
                                        .pre_tokenize_str(s)])
    decodes = []
    vocab = t.get_vocab(with_added_tokens=True)
    b2u = bytes_to_unicode()
    specials = [i for i in (vocab.get("<s>"), vocab.get("</s>"), vocab.get("<|begin_of_text|>"),
                            vocab.get("<|eot_id|>"), vocab.get("<|endoftext|>")) if i is not None]
    for run in BYTE_RUNS:
        if "<0x41>" in vocab:
            ids = [vocab["<0x%02X>" % b] for b in run]
        elif b2u[0x41] in vocab and "<0x41>" not in vocab and "\u0120" in vocab:
            ids = [vocab[b2u[b]] for b in run]
        else:
            break
        for seq in [ids] + [[s] + ids for s in specials[:1]] + [ids + [s] for s in specials[1:2]] + \
                [t.encode(" Hi", add_special_tokens=False).ids + ids]:
            decodes.append({"ids": seq, "decoded": t.decode(seq, skip_special_tokens=True),
                            "decoded_special": t.decode(seq, skip_special_tokens=False)})
    for seq in ([specials[0]] + t.encode("  x", add_special_tokens=False).ids, specials[:2] + [specials[0]],
                t.encode("Hello", add_special_tokens=False).ids + specials[:1] +
                t.encode(" world", add_special_tokens=False).ids, [t.get_vocab_size(with_added_tokens=True) + 5]):
        decodes.append({"ids": seq, "decoded": t.decode(seq, skip_special_tokens=True),
                        "decoded_special": t.decode(seq, skip_special_tokens=False)})
    write_json(EXP / f"{name}.json", {"reference": f"tokenizers {tokenizers.__version__}",
                                       "vocab_size": t.get_vocab_size(with_added_tokens=True), **cases,
                                       "decodes": decodes})
    write_long_expectations(name, whole, lambda s: t.encode(s, add_special_tokens=False).ids,
                            lambda ids: t.decode(ids, skip_special_tokens=True))
    if not corpus:
        return {}
    total = write_corpus_expectations(name, lines, whole, lambda s: t.encode(s, add_special_tokens=False).ids,
                                      lambda ids: t.decode(ids, skip_special_tokens=True))
    return {"corpus_tokens": total}


# ---------------------------------------------------------------------------------------------------------------
# GGUF vocabularies (gguf-py)


def gguf_llama(path: Path, add_space_prefix: bool):
    m = load_proto(SPM_MODEL)
    w = gguf.GGUFWriter(str(path), "llama")
    w.add_tokenizer_model("llama")
    w.add_tokenizer_pre("default")
    w.add_token_list([p.piece for p in m.pieces])
    w.add_token_scores([p.score for p in m.pieces])
    w.add_token_types([int(p.type) for p in m.pieces])
    w.add_bos_token_id(1)
    w.add_eos_token_id(2)
    w.add_unk_token_id(0)
    w.add_add_bos_token(True)
    w.add_add_space_prefix(add_space_prefix)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def gguf_gpt2(path: Path, json_path: Path, pre: str, add_bos: bool, bos_token: str, eos_token: str):
    j = json.loads(json_path.read_text(encoding="utf-8"))
    vocab = j["model"]["vocab"]
    added = {a["content"]: a for a in j["added_tokens"]}
    t = Tokenizer.from_file(str(json_path))
    n = t.get_vocab_size(with_added_tokens=True)
    rev = {i: s for s, i in t.get_vocab(with_added_tokens=True).items()}
    tokens, types = [], []
    for i in range(n):
        s = rev.get(i, f"[PAD{i}]")
        tokens.append(s)
        if s in added:
            types.append(gguf.TokenType.CONTROL if added[s]["special"] else gguf.TokenType.USER_DEFINED)
        elif s in vocab:
            types.append(gguf.TokenType.NORMAL)
        else:
            types.append(gguf.TokenType.UNUSED)
    merges = [" ".join(m) if isinstance(m, list) else m for m in j["model"]["merges"]]
    w = gguf.GGUFWriter(str(path), "llama" if pre == "llama-bpe" else "qwen2")
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre(pre)
    w.add_token_list(tokens)
    w.add_token_types(types)
    w.add_token_merges(merges)
    w.add_bos_token_id(t.token_to_id(bos_token))
    w.add_eos_token_id(t.token_to_id(eos_token))
    w.add_add_bos_token(add_bos)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


# ---------------------------------------------------------------------------------------------------------------
# Unicode classes as the references see them


def unicode_classes():
    cps = [c for c in range(0x110000) if not 0xD800 <= c <= 0xDFFF]
    text = "".join(map(chr, cps))

    def ranges_of(pattern):
        # Split(pattern+, removed) keeps the gaps: every code point outside the returned pieces matched.
        gaps = pre_tokenizers.Split(Regex(pattern), behavior="removed").pre_tokenize_str(text)
        out_of = set()
        for piece, (a, b) in gaps:
            out_of.update(range(a, b))
        member = [cps[i] for i in range(len(cps)) if i not in out_of]
        return to_ranges(member)

    # \w of regex-syntax (added tokens' single_word): one probe per code point, "qzx" + c + " ": the single-word
    # token survives exactly where c is not a word character.
    t = Tokenizer(models.WordLevel({"[UNK]": 0}, unk_token="[UNK]"))
    t.add_tokens([AddedToken("qzx", single_word=True, normalized=False)])
    probe = " ".join("qzx" + chr(c) for c in cps if c not in (0x20,))
    enc = t.encode(probe, add_special_tokens=False)
    word = []
    probe_cps = [c for c in cps if c != 0x20]
    # offsets of the surviving matches tell which probes kept their token
    kept = set()
    starts = {}
    pos = 0
    for k, c in enumerate(probe_cps):
        starts[pos] = c
        pos += 3 + 1 + 1
    for tok, (a, b) in zip(enc.tokens, enc.offsets):
        if tok == "qzx" and a in starts:
            kept.add(starts[a])
    word = [c for c in probe_cps if c not in kept]
    return {"L": ranges_of(r"\p{L}+"), "N": ranges_of(r"\p{N}+"), "S": ranges_of(r"\s+"), "W": to_ranges(word),
            "note": "code point ranges [first, last]: L/N/S as Oniguruma (tokenizers' Split regex) matches \\p{L}, "
                    "\\p{N}, \\s; W = regex-syntax \\w as single_word added tokens test it (U+0020 not probed)."}


def to_ranges(cps):
    out = []
    for c in sorted(cps):
        if out and out[-1][1] + 1 == c:
            out[-1][1] = c
        else:
            out.append([c, c])
    return out


# ---------------------------------------------------------------------------------------------------------------
# the tokenizer.json-only tiny LLaMA


def tiny_llama_json():
    import torch
    from transformers import AutoTokenizer, LlamaForCausalLM
    torch.set_num_threads(1)
    dst = HERE / "tiny-llama-json"
    if dst.exists():
        shutil.rmtree(dst)
    dst.mkdir()
    for f in sorted(TINY.iterdir()):
        if f.name != "tokenizer.model":
            shutil.copyfile(f, dst / f.name)
    tok = AutoTokenizer.from_pretrained(str(dst))
    sp = spm.SentencePieceProcessor(model_file=str(SPM_MODEL))
    # A prompt on which tokenizer.json and sentencepiece disagree (leading spaces): only a tool that
    # reads tokenizer.json gets transformers' ids.
    prompt = "  the number of items in the"
    ids = tok.encode(prompt)
    assert ids != [sp.bos_id()] + sp.encode(prompt), "prompt must separate tokenizer.json from tokenizer.model"
    m = LlamaForCausalLM.from_pretrained(str(dst), dtype=torch.float32, attn_implementation="eager").eval()
    with torch.no_grad():
        out = m.generate(torch.tensor([ids]), max_new_tokens=16, do_sample=False, num_beams=1)[0].tolist()
    gen = out[len(ids):]
    write_json(EXP / "tiny-llama-json.greedy.json", {
        "note": "transformers AutoTokenizer + LlamaForCausalLM (float32, eager), generate() greedy, 16 new tokens",
        "prompt": prompt, "input_ids": ids, "sentencepiece_ids": [sp.bos_id()] + sp.encode(prompt),
        "greedy_ids": gen, "greedy_text": tok.decode(gen, skip_special_tokens=True),
        "text": tok.decode(out, skip_special_tokens=True)})


# ---------------------------------------------------------------------------------------------------------------


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--corpus", action="store_true", help="rebuild tokenizers/corpus.txt (machine-dependent)")
    args = ap.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    if args.corpus or not (OUT / "corpus.txt").exists():
        (OUT / "corpus.txt").write_text(build_corpus(), encoding="utf-8", newline="\n")
    if EXP.exists():
        shutil.rmtree(EXP)
    EXP.mkdir(parents=True)
    whole = (OUT / "corpus.txt").read_text(encoding="utf-8")
    lines = corpus_lines(whole)
    facts = {"generator": "Fixtures/generate_tokenizers.py", "tokenizers": tokenizers.__version__,
             "sentencepiece": spm.__version__, "gguf": getattr(gguf, "__version__", "0.19.0"),
             "python": sys.version.split()[0], "unicodedata": unicodedata.unidata_version,
             "corpus": {"bytes": len(whole.encode()), "lines": len(lines),
                        "sha256": hashlib.sha256(whole.encode()).hexdigest()},
             "kinds": {}}
    print(f"corpus: {len(whole.encode())} bytes, {len(lines)} lines", flush=True)

    variants = spm_variants()
    train_unigram(whole)
    write_json(EXP / "cases.json", {"texts": CASES, "byte_runs": BYTE_RUNS})
    facts["kinds"]["spm"] = spm_kind("spm", SPM_MODEL, lines, whole, True)
    for name, p in variants.items():
        facts["kinds"][name] = spm_kind(name, p, lines, whole, name in ("spm-nodummy", "spm-userdefined"))
    print("sentencepiece kinds done", flush=True)

    paths = spm_json_files()
    paths["tiny-llama-json"] = TINY / "tokenizer.json"
    paths.update(bytelevel_files(lines))
    for name, p in paths.items():
        pattern = QWEN2_PATTERN if name.startswith("qwen2") else LLAMA3_PATTERN if name.startswith("llama3") else None
        facts["kinds"][name] = json_kind(name, p, lines, whole, pattern, corpus=name != "spm-never-json")
        print(f"{name} done", flush=True)

    gguf_llama(OUT / "llama-spm.gguf", True)
    gguf_llama(OUT / "llama-spm-noprefix.gguf", False)
    gguf_gpt2(OUT / "llama3.gguf", paths["llama3-json"], "llama-bpe", True, "<|begin_of_text|>", "<|eot_id|>")
    gguf_gpt2(OUT / "qwen2.gguf", paths["qwen2-json"], "qwen2", False, "<|endoftext|>", "<|im_end|>")
    w = gguf.GGUFWriter(str(OUT / "unknown-pre.gguf"), "qwen2")   # a pre-tokenizer name ckpt must refuse
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre("gpt-4o")
    w.add_token_list(["a", "b", "ab"])
    w.add_token_types([1, 1, 1])
    w.add_token_merges(["a b"])
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    facts["gguf_expectations"] = {"llama-spm.gguf": "spm", "llama-spm-noprefix.gguf": "spm-nodummy",
                                  "llama3.gguf": "llama3-json", "qwen2.gguf": "qwen2-json"}

    write_json(EXP / "unicode.json", unicode_classes())
    tiny_llama_json()
    write_json(OUT / "VERSIONS.json", facts)
    print("done", flush=True)


if __name__ == "__main__":
    main()
