#!/usr/bin/env python3
"""A million-record decision log from a feedback-loop access log, for the README's measurements of
`triage report`, `train --from-log` and `calibrate --from-log` at scale.

    big_log.py ACCESS_LOG DIR [RECORDS]

DIR/big.log: ACCESS_LOG's first record without its body, copied RECORDS times (default 1,000,000)
with fresh decision and request ids, 2.592 s apart (30 days for a million).
DIR/big-bodies.log: ACCESS_LOG's records in turn, bodies kept, each a quiet answer from mid (no label);
every 40th escalated from small after an empty answer (a row), and DIR/big-feedback.jsonl grading
another 1 in 40 small (a row): 50,000 rows of a million records.
A log written before records had `served_cluster` and `mismatch` gets them as the filter writes them.
"""
import json
import sys
import uuid

START_MS = 1_714_521_600_000  # 2024-05-01 00:00 UTC
STEP_MS = 2_592
ESCALATION = {"from": "small", "to": "mid", "cause": "empty", "status": 200, "abandoned_usage": None}


def fresh(record, index):
    record = dict(record)
    record["decision_id"] = str(uuid.UUID(int=index + 1, version=4))
    record["request_id"] = str(uuid.UUID(int=(1 << 64) + index, version=4))
    record["start_ms"] = START_MS + index * STEP_MS
    record.setdefault("served_cluster", "tier_" + record["tier"])
    record.setdefault("mismatch", None)
    return record


def line(record):
    return json.dumps(record, separators=(",", ":")) + "\n"


def main(access_log, directory, count=1_000_000):
    with open(access_log) as f:
        records = [json.loads(text) for text in f if text.startswith("{")]
    first = dict(records[0], request=None)
    with open(f"{directory}/big.log", "w") as out:
        for index in range(count):
            out.write(line(fresh(first, index)))
    with open(f"{directory}/big-bodies.log", "w") as out, \
            open(f"{directory}/big-feedback.jsonl", "w") as feedback:
        for index in range(count):
            record = fresh(records[index % len(records)], index)
            record.update(tier="mid", decided_tier="mid", served_cluster="tier_mid", caller=None,
                          cause="scored", rule=None, override=None, escalations=[], status=200)
            if index % 40 == 0:
                record.update(decided_tier="small", escalations=[ESCALATION])
            elif index % 40 == 20:
                feedback.write(json.dumps({"decision_id": record["decision_id"],
                                           "correct_tier": "small"}) + "\n")
            out.write(line(record))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], *map(int, sys.argv[3:]))
