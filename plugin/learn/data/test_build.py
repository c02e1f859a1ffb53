#!/usr/bin/env python3
"""Tests of build.py's RouterBench conversion and equivalence check, on made-up rows (no source data).

    python3 plugin/learn/data/test_build.py
"""

from __future__ import annotations

import contextlib
import csv
import importlib.util
import io
import json
import tempfile
import unittest
from pathlib import Path

SPEC = importlib.util.spec_from_file_location("build", Path(__file__).with_name("build.py"))
build = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(build)

MODELS = ["zz/extra", "gpt-4-1106-preview", "mistralai/mistral-7b-chat", "mistralai/mixtral-8x7b-chat"]


def fake_csv(rows: list[dict]) -> bytes:
    """A CSV with RouterBench's column layout: index, sample_id, prompt, eval_name, qualities, responses, costs."""
    header = ["", "sample_id", "prompt", "eval_name"] + MODELS + [f"{m}|model_response" for m in MODELS] \
        + [f"{m}|total_cost" for m in MODELS] + ["oracle_model_to_route_to"]
    out = io.StringIO(newline="")
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    for i, row in enumerate(rows):
        writer.writerow([str(i), row["id"], repr(row["prompt"]), "toy"]
                        + [row["q"].get(m, "") for m in MODELS]
                        + [repr([f"answer of {m}\n"]) for m in MODELS]
                        + [row["usd"].get(m, "") for m in MODELS] + ["gpt-4-1106-preview"])
    return out.getvalue().encode("utf-8")


GRADED = {m: "1.0" for m in MODELS}
COSTS = {m: "0.00031919999999999995" for m in MODELS}


class RouterBenchRows(unittest.TestCase):
    def setUp(self):
        data = fake_csv([
            {"id": "toy.1", "prompt": ["Q1?\nA) x\nB) y\nAnswer:"], "q": GRADED, "usd": COSTS},
            # a doubled prompt whose tier models are not graded: dropped
            {"id": "toy.2", "prompt": ["Q2?", "Q2?"], "q": {"zz/extra": "1.0"}, "usd": COSTS},
            # a non-tier model not graded: left out of all_models
            {"id": "toy.2", "prompt": ["Q2?"], "q": {**GRADED, "zz/extra": "", "gpt-4-1106-preview": "0.0"},
             "usd": {**COSTS, "mistralai/mistral-7b-chat": "5.380000000000001e-05"}},
        ])
        self.rows, self.notes = build.routerbench_rows("toy", data, "toy")

    def test_rows_ids_order_and_drops(self):
        self.assertEqual([r["id"] for r in self.rows], ["routerbench/toy/toy.1", "routerbench/toy/toy.2"])
        self.assertEqual(self.notes["toy: dropped, a tier model not graded (prompt list of 2)"], 1)
        self.assertEqual(self.notes["toy: zz/extra not graded, left out of all_models"], 1)

    def test_row_shape(self):
        first, second = self.rows
        self.assertEqual(list(first), ["id", "source", "request", "outcomes", "all_models"])
        self.assertEqual(first["source"], "routerbench-toy")
        self.assertEqual(first["request"], {"model": "auto", "messages": [{"role": "user", "content": "Q1?\nA) x\nB) y\nAnswer:"}]})
        self.assertEqual(list(first["outcomes"]), ["small", "mid", "frontier"])
        self.assertEqual(first["outcomes"]["small"], {"model": "mistralai/mistral-7b-chat", "quality": 1.0,
                                                      "cost_usd": 0.00031919999999999995, "cost_estimated": False,
                                                      "answer": "answer of mistralai/mistral-7b-chat\n"})
        self.assertEqual(list(first["all_models"]), sorted(MODELS))
        self.assertNotIn("zz/extra", second["all_models"])
        self.assertEqual(second["outcomes"]["frontier"]["quality"], 0.0)

    def test_floats_as_json_dumps_writes_them(self):
        line = json.dumps(self.rows[1], ensure_ascii=False)
        self.assertIn('"cost_usd": 5.380000000000001e-05', line)
        self.assertIn('"cost_usd": 0.00031919999999999995', line)

    def test_graded_multi_prompt_is_refused(self):
        data = fake_csv([{"id": "toy.3", "prompt": ["a", "b"], "q": GRADED, "usd": COSTS}])
        with self.assertRaises(SystemExit):
            build.routerbench_rows("toy", data, "toy")


class CheckAgainst(unittest.TestCase):
    def verdict(self, ours: list[dict], reference: list[dict] | None) -> tuple[bool, str]:
        with tempfile.TemporaryDirectory() as tmp:
            out, ref = Path(tmp, "out"), Path(tmp, "ref")
            out.mkdir(), ref.mkdir()
            build.write_jsonl(out / "f.jsonl", ours)
            if reference is not None:
                build.write_jsonl(ref / "f.jsonl", reference)
            printed = io.StringIO()
            with contextlib.redirect_stdout(printed):
                ok = build.check_against(out, ref, ["f.jsonl"])
            return ok, printed.getvalue()

    ROWS = [{"id": "a", "x": 1.5, "y": [1, 2]}, {"id": "b", "x": 0.1, "y": []}]

    def test_identical(self):
        ok, text = self.verdict(self.ROWS, self.ROWS)
        self.assertTrue(ok)
        self.assertIn("IDENTICAL bytes, 2 rows", text)

    def test_key_order_only(self):
        ok, text = self.verdict(self.ROWS, [{"y": [1, 2], "x": 1.5, "id": "a"}, self.ROWS[1]])
        self.assertTrue(ok)
        self.assertIn("EQUAL as parsed JSON", text)

    def test_value_differs(self):
        ok, text = self.verdict(self.ROWS, [self.ROWS[0], {"id": "b", "x": 0.2, "y": []}])
        self.assertFalse(ok)
        self.assertIn("rows differing as parsed JSON: 1", text)
        self.assertIn("/x", text)

    def test_row_missing_and_no_reference(self):
        self.assertFalse(self.verdict(self.ROWS, self.ROWS[:1])[0])
        self.assertFalse(self.verdict(self.ROWS, None)[0])


if __name__ == "__main__":
    unittest.main()
