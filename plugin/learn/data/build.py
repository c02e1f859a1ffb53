#!/usr/bin/env python3
"""Builds routing rows from public GitHub snapshots: simple, natural requests and RouterBench.

Python 3.11, standard library only. Reads the bare git directories that the search tool's `fetch`
brings (or any clone), always at the pinned commits below, through `git show <commit>:<path>`, and
writes JSON lines to an output directory outside the repository (research data: never commit rows).

    python3 plugin/learn/data/build.py \
        --alpaca-eval /work/.mirror/tatsu-lab+alpaca_eval/repo \
        --self-instruct /work/.mirror/yizhongw+self-instruct/repo \
        --routerdc /work/.mirror/shuhao02+RouterDC/repo \
        --out /work/data-build/routing

Each source is optional (--alpaca-eval and --self-instruct go together); --check-against DIR
compares the RouterBench files written with DIR's files of the same names (byte for byte, else row
by row as parsed JSON), prints the verdict and exits 1 unless every file is equivalent.

Writes (see README.md beside this file for provenance, licenses and definitions):
    alpacaeval2.jsonl, alpacaeval1.jsonl
        AlpacaEval's helpful_base + oasst prompts, 3 tiers with judged outcomes; "2": judged against
        GPT-4 Turbo's answers (Mistral-7B / Mixtral-8x7B / GPT-4), "1": judged against
        text-davinci-003's (zephyr-7b-beta / Llama-2-70B-chat / GPT-4 Turbo)
    alpacaeval2-evalonly.jsonl, alpacaeval1-evalonly.jsonl
        the koala + selfinstruct prompts, whose authors ask that they not be trained on
    simple-probe.jsonl
        clearly simple prompts with a `category`; judged ones carry `outcomes_<view>` (input of
        `triage route`)
    simple-probe-alpacaeval2.jsonl, simple-probe-alpacaeval1.jsonl
        the judged probe rows with that view's `outcomes` (input of `triage eval`)
    routerbench-arc.jsonl, routerbench-mbpp.jsonl, routerbench-winogrande.jsonl (with --routerdc)
        RouterBench's graded ARC-Challenge (5-shot), MBPP and Winogrande (5-shot) rows as copied in
        RouterDC's train split, 3 tiers (Mistral-7B / Mixtral-8x7B / GPT-4 Turbo) with RouterBench's
        measured costs and every model in `all_models`: the training rows of
        /work/shared/data/routing/train/, rebuilt
The output is deterministic: same snapshots, same bytes.
"""

from __future__ import annotations

import argparse
import ast
import collections
import csv
import difflib
import hashlib
import io
import json
import math
import re
import subprocess
import sys
from pathlib import Path

# --- pinned sources -------------------------------------------------------------------------------

ALPACA_EVAL_COMMIT = "cd543a149df89434d8a54582c0151c0b945c3d20"  # tatsu-lab/alpaca_eval, 2025-08-09
SELF_INSTRUCT_COMMIT = "0b26ccaa415992100fa32df62d41b994cf928e23"  # yizhongw/self-instruct, 2023-03-27
ROUTERDC_COMMIT = "0e63989c5bf4363330b8a4616386e3f7f116d9f8"  # shuhao02/RouterDC, 2025-02-25

# RouterBench (withmartian) rows as RouterDC copies them, train split only: output name -> (the one
# file read, RouterBench's `eval_name` of every row). These three paths are the only RouterDC files
# this build reads: the `*_test.csv` files beside them, and every other file under `datasets/`
# (GSM8K, MMLU, HellaSwag, MT-Bench, ...), are held-out evaluation sets and are never opened or listed.
ROUTERBENCH_FILES = {
    "arc": ("datasets/routerbench_zs/arc_challenge_train.csv", "arc-challenge"),
    "mbpp": ("datasets/routerbench_zs/mbpp_train.csv", "mbpp"),
    "winogrande": ("datasets/routerbench_zs/winograde_train.csv", "winogrande"),  # sic: "winograde"
}
# RouterBench model names of the tiers (the format of /work/shared/data/routing/README.md).
ROUTERBENCH_TIERS = {"small": "mistralai/mistral-7b-chat", "mid": "mistralai/mixtral-8x7b-chat",
                     "frontier": "gpt-4-1106-preview"}

# Two judged views of the same AlpacaEval prompts, each a judge comparing a model's output with a
# reference model's output on every prompt. A model's quality on a prompt is the judge's preference
# for it: 1 = preferred over the reference, 0.5 = tie (AlpacaEval's 1.5, or 0 for identical
# outputs), 0 = the reference preferred. Each model entry: AlpacaEval name -> (name written in the
# rows, USD per 1M input tokens, USD per 1M output tokens, tier or None). Tier prices are list
# prices (Together AI serverless for open models, the vendor's API otherwise); the other models'
# prices are approximate (open models by size class) and only feed `all_models`.
VIEWS = {
    # AlpacaEval 2.0: GPT-4 Turbo (gpt-4-1106-preview) as judge with a chain of thought, against
    # GPT-4 Turbo's own outputs: "beats GPT-4 Turbo". The only AlpacaEval 2.0 judge whose
    # annotations the snapshot holds for Mistral-7B-Instruct, Mixtral and a GPT-4 (the default
    # `weighted_alpaca_eval_gpt4_turbo` files of these models are 4 MiB or more, which it lacks).
    "alpacaeval2": {
        "annotator": "alpaca_eval_cot_gpt4_turbo_fn",
        "reference": "gpt4_1106_preview",
        "models": {
            "Mistral-7B-Instruct-v0.2": ("mistralai/Mistral-7B-Instruct-v0.2", 0.20, 0.20, "small"),
            "Mixtral-8x7B-Instruct-v0.1": ("mistralai/Mixtral-8x7B-Instruct-v0.1", 0.60, 0.60, "mid"),
            "gpt4": ("gpt-4", 30.00, 60.00, "frontier"),
            "alpaca-7b": ("tatsu-lab/alpaca-7b", 0.20, 0.20, None),
            "claude-2.1": ("claude-2.1", 8.00, 24.00, None),
            "cohere": ("cohere/command-nightly", 1.00, 2.00, None),
            "gemini-pro": ("gemini-pro", 0.50, 1.50, None),
            "gpt-3.5-turbo-0301": ("gpt-3.5-turbo-0301", 1.50, 2.00, None),
            "llama-2-70b-chat-hf": ("meta-llama/Llama-2-70b-chat-hf", 0.90, 0.90, None),
            "tulu-2-dpo-70b": ("allenai/tulu-2-dpo-70b", 0.90, 0.90, None),
            "vicuna-33b-v1.3": ("lmsys/vicuna-33b-v1.3", 0.80, 0.80, None),
        },
    },
    # AlpacaEval 1: GPT-4 as judge against text-davinci-003's outputs: "at least as good as
    # text-davinci-003", a weaker reference, so closer to "answered well". Mistral-7B-Instruct and
    # Mixtral have no such annotations; zephyr-7b-beta (a Mistral-7B fine-tune) stands for the small
    # tier, Llama-2-70B-chat for the mid one, and the frontier is GPT-4 Turbo (gpt-4-1106-preview),
    # the frontier model of the existing RouterBench rows.
    "alpacaeval1": {
        "annotator": "alpaca_eval_gpt4",
        "reference": "text_davinci_003",
        "models": {
            "zephyr-7b-beta": ("HuggingFaceH4/zephyr-7b-beta", 0.20, 0.20, "small"),
            "llama-2-70b-chat-hf": ("meta-llama/Llama-2-70b-chat-hf", 0.90, 0.90, "mid"),
            "gpt4_1106_preview": ("gpt-4-1106-preview", 10.00, 30.00, "frontier"),
            "alpaca-7b": ("tatsu-lab/alpaca-7b", 0.20, 0.20, None),
            "claude": ("claude-1", 8.00, 24.00, None),
            "claude-2": ("claude-2", 8.00, 24.00, None),
            "cohere": ("cohere/command", 1.00, 2.00, None),
            "gpt-3.5-turbo-0301": ("gpt-3.5-turbo-0301", 1.50, 2.00, None),
            "gpt-3.5-turbo-1106": ("gpt-3.5-turbo-1106", 1.00, 2.00, None),
            "gpt35_turbo_instruct": ("gpt-3.5-turbo-instruct", 1.50, 2.00, None),
            "gpt4": ("gpt-4", 30.00, 60.00, None),
            "gpt4_0314": ("gpt-4-0314", 30.00, 60.00, None),
            "guanaco-65b": ("timdettmers/guanaco-65b", 0.90, 0.90, None),
            "llama-2-7b-chat-hf": ("meta-llama/Llama-2-7b-chat-hf", 0.20, 0.20, None),
            "llama-2-13b-chat-hf": ("meta-llama/Llama-2-13b-chat-hf", 0.30, 0.30, None),
            "mistral-medium": ("mistral-medium", 2.70, 8.10, None),
            "phi-2": ("microsoft/phi-2", 0.10, 0.10, None),
            "text_davinci_001": ("text-davinci-001", 20.00, 20.00, None),
            "tulu-2-dpo-7b": ("allenai/tulu-2-dpo-7b", 0.20, 0.20, None),
            "tulu-2-dpo-13b": ("allenai/tulu-2-dpo-13b", 0.30, 0.30, None),
            "tulu-2-dpo-70b": ("allenai/tulu-2-dpo-70b", 0.90, 0.90, None),
            "vicuna-13b": ("lmsys/vicuna-13b", 0.30, 0.30, None),
            "wizardlm-13b": ("WizardLM/WizardLM-13B", 0.30, 0.30, None),
            "Yi-34B-Chat": ("01-ai/Yi-34B-Chat", 0.80, 0.80, None),
            "zephyr-7b-alpha": ("HuggingFaceH4/zephyr-7b-alpha", 0.20, 0.20, None),
        },
    },
}
TIERS = ("small", "mid", "frontier")

SUBSETS_TRAIN = ("helpful_base", "oasst")  # Anthropic HH-RLHF test (MIT), OASST1 validation (Apache-2.0)
SUBSETS_EVAL_ONLY = ("koala", "selfinstruct")  # their authors: "do not use ... for training"
SUBSETS_EXCLUDED = ("vicuna",)  # LMSYS Vicuna-80, MT-Bench's predecessor by the same authors

# Openings of well-known GSM8K-style few-shot exemplars (the chain-of-thought prompts) and of GSM8K's
# first training problem, listed from memory; rows containing one are dropped. A guard, not a
# decontamination against GSM8K itself, which this build never opens.
GSM8K_FEWSHOT_MARKERS = (
    "there are 15 trees in the grove",
    "if there are 3 cars in the parking lot",
    "leah had 32 chocolates",
    "jason had 20 lollipops",
    "shawn has five toys",
    "there were nine computers in the server room",
    "michael had 58 golf balls",
    "olivia has $23",
    "roger has 5 tennis balls",
    "natalia sold clips to 48 of her friends",
)
NEAR_DUP_RATIO = 0.9  # difflib ratio on normalised text above which a row counts as a near-copy

# --- the simple-work probe: hand-assigned categories (the sources give none, except Self-Instruct's
# `is_classification` flag, which is kept). Only clearly simple tasks are listed; math word
# problems, code, open-ended writing and advice are left out on purpose.

PROBE_CATEGORIES = ("classification", "extraction", "translation", "reformatting", "yes_no", "lookup", "chit_chat")

# Self-Instruct's 252 user-oriented tasks (`human_eval/user_oriented_instructions.jsonl`), which are
# AlpacaEval's `selfinstruct` subset: probe rows from them carry the judged outcomes.
PROBE_USER_ORIENTED = {
    "classification": (36, 91, 139, 158, 163, 164, 165, 166, 183, 184, 194, 197, 225, 232, 234, 235, 238, 243, 244),
    "extraction": (28, 157, 162, 179, 212, 247),
    "translation": (100, 124),
    "reformatting": (0, 2, 3, 6, 156, 161, 178, 187, 188, 193, 220, 224, 240),
    "yes_no": (82,),
    "lookup": (4, 16, 125, 147, 185, 200, 203, 226, 229, 241, 245),
    "chit_chat": (153, 154, 168, 206),
}
# Self-Instruct's 175 seed tasks (`data/seed_tasks.jsonl`, written by the paper's authors): no outcomes.
PROBE_SEED = {
    "classification": (148, 150, 151, 152, 154, 156, 157, 158, 159, 162, 163, 164, 165, 166, 167, 168, 169, 170, 171, 172, 173),
    "extraction": (39, 53, 67, 78, 85),
    "translation": (101, 117),
    "reformatting": (42, 43, 58, 97, 98, 110, 114, 126, 132),
    "yes_no": (92, 160, 174),
    "lookup": (1, 7, 15, 38, 48, 60, 88, 107, 134, 147, 161),
    "chit_chat": (68, 90),
}
SEED_EXCLUDED = {45: "GSM8K few-shot exemplar (Roger's tennis balls)"}


# --- helpers --------------------------------------------------------------------------------------

def git_show(git_dir: Path, commit: str, path: str) -> bytes:
    try:
        return subprocess.run(
            ["git", f"--git-dir={git_dir}", "show", f"{commit}:{path}"],
            check=True, capture_output=True,
        ).stdout
    except subprocess.CalledProcessError as error:
        sys.exit(f"git show {commit}:{path} in {git_dir} failed: {error.stderr.decode().strip()}")


def git_json(git_dir: Path, commit: str, path: str):
    return json.loads(git_show(git_dir, commit, path))


def git_jsonl(git_dir: Path, commit: str, path: str) -> list:
    return [json.loads(line) for line in git_show(git_dir, commit, path).decode().splitlines() if line.strip()]


def normalise(text: str) -> str:
    return re.sub(r"\W+", " ", text.lower()).strip()


def near_copy(key: str, others: list[str]) -> bool:
    """Whether normalised `key` has a difflib ratio >= NEAR_DUP_RATIO with any of `others`."""
    for other in others:
        matcher = difflib.SequenceMatcher(None, key, other)
        if matcher.real_quick_ratio() >= NEAR_DUP_RATIO and matcher.quick_ratio() >= NEAR_DUP_RATIO \
                and matcher.ratio() >= NEAR_DUP_RATIO:
            return True
    return False


def tokens(text: str) -> float:
    """Estimated tokens: characters / 4."""
    return len(text) / 4


def cost(prompt: str, answer: str, usd_in: float, usd_out: float) -> float:
    return round((tokens(prompt) * usd_in + tokens(answer) * usd_out) / 1e6, 10)


def request(content: str) -> dict:
    return {"model": "auto", "messages": [{"role": "user", "content": content}]}


def join_instruction(instruction: str, input_text: str) -> str:
    """Self-Instruct's instruction + input, joined as AlpacaEval's `selfinstruct` subset joins them."""
    instruction, input_text = instruction.strip(), input_text.strip()
    return instruction + ("\n\n" + input_text if input_text else "")


def write_jsonl(path: Path, rows: list[dict]) -> None:
    with path.open("w", encoding="utf-8", newline="\n") as out:
        for row in rows:
            out.write(json.dumps(row, ensure_ascii=False) + "\n")


# --- AlpacaEval -----------------------------------------------------------------------------------

def alpaca_eval_prompts(git_dir: Path) -> tuple[list[tuple[int, str, str]], collections.Counter]:
    """The kept AlpacaEval prompts as (index in the 805-prompt set, subset, prompt), and the drops."""
    base = git_json(git_dir, ALPACA_EVAL_COMMIT, "results/gpt4_1106_preview/model_outputs.json")
    if len(base) != 805:
        sys.exit(f"expected 805 AlpacaEval prompts, got {len(base)}")
    dropped = collections.Counter()
    vicuna = [normalise(r["instruction"]) for r in base if r["dataset"] in SUBSETS_EXCLUDED]
    seen, kept = set(), []
    for index, head in enumerate(base):
        subset, prompt = head["dataset"], head["instruction"]
        if subset in SUBSETS_EXCLUDED:
            dropped[f"subset {subset} (MT-Bench precaution)"] += 1
            continue
        if subset not in SUBSETS_TRAIN + SUBSETS_EVAL_ONLY:
            sys.exit(f"unknown AlpacaEval subset {subset}")
        key = normalise(prompt)
        if key in seen:
            dropped["duplicate prompt"] += 1
            continue
        seen.add(key)
        if any(normalise(marker) in key for marker in GSM8K_FEWSHOT_MARKERS):
            dropped["GSM8K few-shot exemplar"] += 1
            continue
        if near_copy(key, vicuna):
            dropped["near-copy of a Vicuna-80 prompt"] += 1
            continue
        kept.append((index, subset, prompt))
    return kept, dropped


def quality(preference) -> float | None:
    """AlpacaEval preference (1 reference, 2 model, 1.5 or 0 tie) -> quality in [0, 1]."""
    if preference is None:
        return None
    preference = float(preference)
    return (1.5 if preference == 0 else preference) - 1.0


def alpaca_eval_view(git_dir: Path, view: str, prompts: list[tuple[int, str, str]]) -> tuple[list[dict], collections.Counter]:
    """Routing rows for the kept prompts, judged as `view` says."""
    spec = VIEWS[view]
    judged = {}
    for name in spec["models"]:
        annotations = git_json(git_dir, ALPACA_EVAL_COMMIT, f"results/{name}/{spec['annotator']}/annotations.json")
        by_prompt = {}
        for a in annotations:
            if (a["generator_1"], a["generator_2"], a["annotator"]) != (spec["reference"], name, spec["annotator"]):
                sys.exit(f"{name}: unexpected annotation {a['generator_1']} vs {a['generator_2']} by {a['annotator']}")
            by_prompt[a["instruction"]] = a
        if len(by_prompt) != 805:
            sys.exit(f"{name}: {len(by_prompt)} distinct prompts judged, expected 805")
        judged[name] = by_prompt
    notes, rows = collections.Counter(), []
    for index, subset, prompt in prompts:
        outcomes, all_models = {}, {}
        for name, (model, usd_in, usd_out, tier) in spec["models"].items():
            a = judged[name].get(prompt)
            q = quality(a["preference"]) if a else None
            if q is None:
                notes[f"{view}: a prompt without {name}'s judgement"] += 1
                continue
            answer = a["output_2"] or ""
            usd = cost(prompt, answer, usd_in, usd_out)
            all_models[model] = {"quality": q, "cost_usd": usd}
            if tier:
                outcomes[tier] = {"model": model, "quality": q, "cost_usd": usd,
                                  "cost_estimated": True, "answer": answer}
        if len(outcomes) != len(TIERS):
            notes[f"{view}: dropped, a tier model has no judgement"] += 1
            continue
        rows.append({
            "id": f"alpacaeval/{subset}/{index}",
            "source": view if subset in SUBSETS_TRAIN else f"{view}-evalonly",
            "category": subset,
            "request": request(prompt),
            "outcomes": {tier: outcomes[tier] for tier in TIERS},
            "all_models": dict(sorted(all_models.items())),
        })
    return rows, notes


# --- the probe ------------------------------------------------------------------------------------

def build_probe(self_instruct: Path, views: dict[str, list[dict]], train_prompts: list[str]) -> tuple[list[dict], collections.Counter]:
    """Probe rows; a row judged in AlpacaEval carries each view's outcomes as `outcomes_<view>`."""
    by_prompt = {view: {row["request"]["messages"][0]["content"]: row for row in rows} for view, rows in views.items()}
    probe, notes = [], collections.Counter()

    user_oriented = git_jsonl(self_instruct, SELF_INSTRUCT_COMMIT, "human_eval/user_oriented_instructions.jsonl")
    for category, numbers in PROBE_USER_ORIENTED.items():
        for number in numbers:
            task = user_oriented[number]
            assert task["id"] == f"user_oriented_task_{number}", task["id"]
            prompt = join_instruction(task["instruction"], task["instances"][0]["input"])
            row = {"id": f"selfinstruct-user/{number}", "source": "selfinstruct-user", "category": category,
                   "request": request(prompt), "motivation_app": task["motivation_app"]}
            for view in views:
                judged = by_prompt[view].get(prompt)
                if judged:
                    row["alpacaeval_id"] = judged["id"]
                    row[f"outcomes_{view}"] = judged["outcomes"]
                else:
                    notes[f"user-oriented task without a {view} judgement"] += 1
            probe.append(row)

    seeds = git_jsonl(self_instruct, SELF_INSTRUCT_COMMIT, "data/seed_tasks.jsonl")
    for category, numbers in PROBE_SEED.items():
        for number in numbers:
            if number in SEED_EXCLUDED:
                sys.exit(f"seed task {number} is excluded: {SEED_EXCLUDED[number]}")
            task = seeds[number]
            assert task["id"] == f"seed_task_{number}", task["id"]
            prompt = join_instruction(task["instruction"], task["instances"][0]["input"])
            probe.append({"id": f"selfinstruct-seed/{number}", "source": "selfinstruct-seed", "category": category,
                          "request": request(prompt), "task_name": task["name"],
                          "is_classification": task["is_classification"]})

    # Guard: no probe prompt may be (nearly) a training row's prompt.
    train_keys = [normalise(prompt) for prompt in train_prompts]
    for row in probe:
        if near_copy(normalise(row["request"]["messages"][0]["content"]), train_keys):
            sys.exit(f"probe row {row['id']} nearly copies a training row")
    probe.sort(key=lambda row: (PROBE_CATEGORIES.index(row["category"]), row["source"], int(row["id"].split("/")[-1])))
    return probe, notes


# --- RouterBench (via RouterDC) -----------------------------------------------------------------

def routerbench_rows(name: str, data: bytes, eval_name: str) -> tuple[list[dict], collections.Counter]:
    """Routing rows from one RouterDC `*_train.csv` (RouterBench's columns), in the file's order.

    Columns: an unnamed index, `sample_id`, `prompt` (a Python list literal of strings), `eval_name`,
    one quality column per model (1.0 = correct, empty = not graded), `<model>|model_response` (a
    list literal of one string) and `<model>|total_cost` (USD, RouterBench's measured cost), and
    `oracle_model_to_route_to` (unused). A row is dropped when a tier model has no quality; a
    non-tier model without quality or cost is left out of that row's `all_models`.
    """
    csv.field_size_limit(2**31 - 1)
    reader = csv.reader(io.StringIO(data.decode("utf-8"), newline=""))
    header = next(reader)
    models = sorted(column.removesuffix("|total_cost") for column in header if column.endswith("|total_cost"))
    for column in ["sample_id", "prompt", "eval_name"] + [m + suffix for m in models for suffix in ("", "|model_response")]:
        if column not in header:
            sys.exit(f"{name}: no column {column!r}")
    missing_tiers = set(ROUTERBENCH_TIERS.values()) - set(models)
    if missing_tiers:
        sys.exit(f"{name}: no tier model {sorted(missing_tiers)}")

    def number(text: str, what: str) -> float | None:
        if text == "":
            return None
        value = float(text)
        if not math.isfinite(value):
            sys.exit(f"{name}: {what} is {text}")
        return value

    def one_string(text: str, what: str) -> str:
        value = ast.literal_eval(text)
        if not (isinstance(value, list) and len(value) == 1 and isinstance(value[0], str)):
            sys.exit(f"{name}: {what} is not a list of one string")
        return value[0]

    rows, seen, notes = [], set(), collections.Counter()
    for values in reader:
        if len(values) != len(header):
            sys.exit(f"{name}: a line with {len(values)} fields, expected {len(header)}")
        row = dict(zip(header, values))
        sample = row["sample_id"]
        if row["eval_name"] != eval_name:
            sys.exit(f"{name}: {sample} has eval_name {row['eval_name']!r}, expected {eval_name!r}")
        prompt = ast.literal_eval(row["prompt"])
        if not (isinstance(prompt, list) and prompt and all(isinstance(part, str) for part in prompt)):
            sys.exit(f"{name}: {sample}: the prompt is not a list of strings")
        if any(row[model] == "" for model in ROUTERBENCH_TIERS.values()):
            # In ARC these are the 8 rows whose prompt list holds the same prompt twice: only
            # gpt-3.5-turbo-1106 is graded on them; 7 of the 8 samples also have a graded one-prompt row.
            notes[f"{name}: dropped, a tier model not graded (prompt list of {len(prompt)})"] += 1
            continue
        if len(prompt) != 1:
            sys.exit(f"{name}: {sample}: a graded row with a prompt list of {len(prompt)}")
        if sample in seen:
            sys.exit(f"{name}: {sample} twice")
        seen.add(sample)
        all_models = {}
        for model in models:
            q = number(row[model], f"{sample} {model} quality")
            usd = number(row[f"{model}|total_cost"], f"{sample} {model} cost")
            if q is None or usd is None:
                notes[f"{name}: {model} not graded, left out of all_models"] += 1
                continue
            if not 0.0 <= q <= 1.0:
                sys.exit(f"{name}: {sample} {model} quality {q}")
            all_models[model] = {"quality": q, "cost_usd": usd}
        outcomes = {}
        for tier, model in ROUTERBENCH_TIERS.items():
            if model not in all_models:
                sys.exit(f"{name}: {sample} {model} has a quality but no cost")
            outcomes[tier] = {"model": model, **all_models[model], "cost_estimated": False,
                              "answer": one_string(row[f"{model}|model_response"], f"{sample} {model}'s response")}
        rows.append({
            "id": f"routerbench/{name}/{sample}",
            "source": f"routerbench-{name}",
            "request": request(prompt[0]),
            "outcomes": outcomes,
            "all_models": all_models,
        })
    return rows, notes


def routerbench(git_dir: Path) -> tuple[dict[str, list[dict]], collections.Counter]:
    """The three RouterBench files' rows, read from RouterDC at the pinned commit (train CSVs only)."""
    files, notes = {}, collections.Counter()
    for name, (path, eval_name) in ROUTERBENCH_FILES.items():
        rows, file_notes = routerbench_rows(name, git_show(git_dir, ROUTERDC_COMMIT, path), eval_name)
        files[f"routerbench-{name}.jsonl"] = rows
        notes.update(file_notes)
    return files, notes


# --- the equivalence check ------------------------------------------------------------------------

def json_differences(a, b, path: str = "") -> list[str]:
    """Paths where two parsed JSON values differ (key order ignored, as in parsed JSON)."""
    if isinstance(a, dict) and isinstance(b, dict):
        out = [f"{path}/{k}: only in ours" for k in a.keys() - b.keys()]
        out += [f"{path}/{k}: only in the reference" for k in b.keys() - a.keys()]
        for k in sorted(a.keys() & b.keys()):
            out += json_differences(a[k], b[k], f"{path}/{k}")
        return out
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        return [d for i, (x, y) in enumerate(zip(a, b)) for d in json_differences(x, y, f"{path}/{i}")]
    return [] if (a == b and type(a) is type(b)) else [f"{path}: {json.dumps(a)[:80]} != {json.dumps(b)[:80]}"]


def check_against(out: Path, reference: Path, names: list[str]) -> bool:
    """Compares each written file with the reference file of the same name; prints one verdict each."""
    print(f"\ncheck against {reference}:")
    ok = True
    for name in names:
        ours, theirs = out / name, reference / name
        if not theirs.is_file():
            print(f"  {name}: FAIL, no reference file {theirs}")
            ok = False
            continue
        a, b = ours.read_bytes(), theirs.read_bytes()
        rows_a, rows_b = a.decode("utf-8").splitlines(), b.decode("utf-8").splitlines()
        if a == b:
            print(f"  {name}: IDENTICAL bytes, {len(rows_a)} rows, sha256 {hashlib.sha256(a).hexdigest()}")
            continue
        parsed_a, parsed_b = [json.loads(line) for line in rows_a], [json.loads(line) for line in rows_b]
        problems = []
        if len(parsed_a) != len(parsed_b):
            problems.append(f"{len(parsed_a)} rows, the reference {len(parsed_b)}")
        ids_a, ids_b = [r.get("id") for r in parsed_a], [r.get("id") for r in parsed_b]
        if ids_a != ids_b:
            only_a, only_b = set(ids_a) - set(ids_b), set(ids_b) - set(ids_a)
            problems.append(f"ids differ: {len(only_a)} only ours (e.g. {sorted(only_a)[:3]}), {len(only_b)} only in"
                            f" the reference (e.g. {sorted(only_b)[:3]}){', order differs' if not only_a | only_b else ''}")
        differing = [(r.get("id"), json_differences(r, s)) for r, s in zip(parsed_a, parsed_b) if r != s]
        if differing:
            problems.append(f"rows differing as parsed JSON: {len(differing)}; first: {differing[0][0]}: {differing[0][1][:3]}")
        if problems:
            print(f"  {name}: FAIL, " + "; ".join(problems))
            ok = False
            continue
        offset = next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))
        line = a[:offset].count(b"\n") + 1
        print(f"  {name}: EQUAL as parsed JSON ({len(parsed_a)} rows, same ids and order), bytes differ from"
              f" offset {offset} (line {line})")
    print("verdict: " + ("equivalent" if ok else "NOT equivalent"))
    return ok


# --- statistics -----------------------------------------------------------------------------------

def summarise(name: str, rows: list[dict]) -> None:
    judged = [row for row in rows if "outcomes" in row]
    print(f"\n{name}: {len(rows)} rows")
    print("  by category: " + ", ".join(f"{k} {v}" for k, v in sorted(collections.Counter(r.get("category", r["source"]) for r in rows).items())))
    if not judged:
        return
    categories = {r.get("category", r["source"]) for r in judged}
    groups = [("all", judged)] + (sorted(
        (cat, [r for r in judged if r.get("category", r["source"]) == cat]) for cat in categories) if len(categories) > 1 else [])
    print(f"  {'group':<16}{'rows':>5}  {'q small':>7} {'q mid':>6} {'q front':>7}  {'s>=f':>5} {'s==f':>5} {'s>f':>5} {'s<f':>5}"
          f"  {'s|f won':>7}  oracle s/m/f        cost s/m/f (USD per 1k calls)")
    for group, subset in groups:
        n = len(subset)
        q = {t: sum(r["outcomes"][t]["quality"] for r in subset) / n for t in TIERS}
        c = {t: 1000 * sum(r["outcomes"][t]["cost_usd"] for r in subset) / n for t in TIERS}
        s = [r["outcomes"]["small"]["quality"] for r in subset]
        f = [r["outcomes"]["frontier"]["quality"] for r in subset]
        ge = sum(a >= b for a, b in zip(s, f)) / n
        eq = sum(a == b for a, b in zip(s, f)) / n
        gt = sum(a > b for a, b in zip(s, f)) / n
        lt = sum(a < b for a, b in zip(s, f)) / n
        won = [a for a, b in zip(s, f) if b == 1.0]
        given = sum(a == 1.0 for a in won) / len(won) if won else float("nan")
        oracle = collections.Counter()
        for r in subset:
            best = max(r["outcomes"][t]["quality"] for t in TIERS)
            oracle[next(t for t in TIERS if r["outcomes"][t]["quality"] >= best)] += 1
        shares = "/".join(f"{100 * oracle[t] / n:.0f}%" for t in TIERS)
        costs = "/".join(f"{c[t]:.3f}" for t in TIERS)
        print(f"  {group:<16}{n:>5}  {q['small']:>7.3f} {q['mid']:>6.3f} {q['frontier']:>7.3f}  {ge:>5.2f} {eq:>5.2f} {gt:>5.2f} {lt:>5.2f}"
              f"  {given:>7.2f}  {shares:<18} {costs}")


# --- main -----------------------------------------------------------------------------------------

def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--alpaca-eval", type=Path, help="git dir of tatsu-lab/alpaca_eval (with --self-instruct)")
    parser.add_argument("--self-instruct", type=Path, help="git dir of yizhongw/self-instruct (with --alpaca-eval)")
    parser.add_argument("--routerdc", type=Path, help="git dir of shuhao02/RouterDC: writes the routerbench-*.jsonl files")
    parser.add_argument("--out", type=Path, default=Path("/work/data-build/routing"))
    parser.add_argument("--check-against", type=Path, metavar="DIR",
                        help="compare the routerbench-*.jsonl files written with DIR's (e.g."
                             " /work/shared/data/routing/train); exit 1 unless all are equivalent")
    args = parser.parse_args()
    if (args.alpaca_eval is None) != (args.self_instruct is None):
        parser.error("--alpaca-eval and --self-instruct go together")
    if args.alpaca_eval is None and args.routerdc is None:
        parser.error("nothing to build: give --alpaca-eval and --self-instruct, or --routerdc, or all three")
    if args.check_against is not None and args.routerdc is None:
        parser.error("--check-against compares the RouterBench files: give --routerdc")
    args.out.mkdir(parents=True, exist_ok=True)
    written = []

    if args.alpaca_eval is not None:
        prompts, dropped = alpaca_eval_prompts(args.alpaca_eval)
        print(f"AlpacaEval {ALPACA_EVAL_COMMIT[:12]}, Self-Instruct {SELF_INSTRUCT_COMMIT[:12]}")
        print(f"AlpacaEval prompts kept: {len(prompts)} of 805; dropped: "
              + (", ".join(f"{k} {v}" for k, v in sorted(dropped.items())) or "none"))
        views = {}
        for view in VIEWS:
            rows, notes = alpaca_eval_view(args.alpaca_eval, view, prompts)
            views[view] = rows
            for note, count in sorted(notes.items()):
                print(f"note: {note}: {count}")
            for name, subset in ((f"{view}.jsonl", SUBSETS_TRAIN), (f"{view}-evalonly.jsonl", SUBSETS_EVAL_ONLY)):
                part = [row for row in rows if row["category"] in subset]
                write_jsonl(args.out / name, part)
                written.append((name, part))

        train_prompts = [prompt for _, subset, prompt in prompts if subset in SUBSETS_TRAIN]
        probe, notes = build_probe(args.self_instruct, views, train_prompts)
        for note, count in sorted(notes.items()):
            print(f"note: {note}: {count}")
        write_jsonl(args.out / "simple-probe.jsonl", probe)
        written.append(("simple-probe.jsonl", probe))
        for view in VIEWS:
            others = {row["id"]: row["all_models"] for row in views[view]}
            judged = [{**{k: v for k, v in row.items() if not k.startswith("outcomes_")},
                       "outcomes": row[f"outcomes_{view}"], "all_models": others[row["alpacaeval_id"]]}
                      for row in probe if f"outcomes_{view}" in row]
            write_jsonl(args.out / f"simple-probe-{view}.jsonl", judged)
            written.append((f"simple-probe-{view}.jsonl", judged))

    routerbench_names = []
    if args.routerdc is not None:
        files, notes = routerbench(args.routerdc)
        print(f"RouterDC {ROUTERDC_COMMIT[:12]}: " + ", ".join(path for path, _ in ROUTERBENCH_FILES.values()))
        for note, count in sorted(notes.items()):
            print(f"note: {note}: {count}")
        for name, rows in files.items():
            write_jsonl(args.out / name, rows)
            written.append((name, rows))
            routerbench_names.append(name)

    for name, rows in written:
        summarise(name, rows)
    print("\ncolumns: q = mean quality (AlpacaEval: 1 = the judge preferred the tier's answer over the reference's,"
          " 0.5 tie; RouterBench: 1 = graded correct); s>=f etc. = share of rows where small's quality is >=, ==, >, <"
          " frontier's; s|f won = share of the rows frontier won on that small also won;"
          " oracle = cheapest tier with the best quality; cost = USD per 1,000 calls (AlpacaEval: estimated;"
          " RouterBench: measured)")
    print(f"wrote {len(written)} files to {args.out}")
    if args.check_against is not None and not check_against(args.out, args.check_against, routerbench_names):
        sys.exit(1)

if __name__ == "__main__":
    main()
