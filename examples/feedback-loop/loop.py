#!/usr/bin/env python3
"""The JSON side of run.sh: which requests each phase sends, the simulated reviewer, and the
side-by-side table of the shipped and the retrained model.

    loop.py bodies PROMPTS DIR              a chat body per prompt (DIR/<id>.json) and DIR/route-input.jsonl
    loop.py plan PROMPTS PHASE              the phase's requests: id, kind, stream, then curl -H values
    loop.py review SENT                     feedback rows for the requests in SENT (run.sh's sent.tsv)
    loop.py compare PROMPTS PHASE SHIPPED RETRAINED   `triage route` outputs of both models, side by side
    loop.py embed CONFIG MODEL              CONFIG with MODEL embedded (no max_score: the model's thresholds)
    loop.py check-scores SENT PHASE ROUTED  do Envoy's x-triage-score values equal `triage route`'s?
    loop.py same-traffic SENT PHASE LOG CONFIG SHIPPED   the phase's requests priced at both models' tiers
"""
import json
import os
import sys

# The simulated reviewer's rule: the cheapest tier that should answer a prompt of this kind. The kind is
# the label the prompt was written under in prompts.jsonl, not a judgement of any answer.
CORRECT_TIER = {
    "classify": "small", "extract": "small", "translate": "small", "yesno": "small",
    "summarize": "mid", "explain": "mid", "draft": "mid",
    "code": "frontier", "reasoning": "frontier", "proof": "frontier",
}
# Kinds the ops console sends, with the override header set to the tier its operators want.
CONSOLE_KINDS = ("translate", "code")
# A flaky integration: the same classification prompts, failing on the small tier in three ways.
FLAKY = (("classify-1", "status=503"), ("classify-2", "truncate"), ("classify-1", "refusal"))
PROMPTS_PER_PHASE = 3


def read_prompts(path):
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def body(prompt):
    return {"model": "auto", "messages": [{"role": "user", "content": prompt["prompt"]}]}


def bodies(prompts_path, directory):
    with open(f"{directory}/route-input.jsonl", "w") as route_input:
        for prompt in read_prompts(prompts_path):
            with open(f"{directory}/{prompt['id']}.json", "w") as f:
                json.dump(body(prompt), f)
            route_input.write(json.dumps({"id": prompt["id"], "request": body(prompt)}) + "\n")


def in_phase(prompt, phase):
    """Phase 1 sends each kind's prompts 1-3, phase 2 prompts 4-6, phase 3 prompts 7-9."""
    number = int(prompt["id"].rsplit("-", 1)[1])
    return (number - 1) // PROMPTS_PER_PHASE == phase - 1


def plan(prompts_path, phase):
    for prompt in read_prompts(prompts_path):
        if not in_phase(prompt, int(phase)):
            continue
        kind = prompt["kind"]
        if kind in CONSOLE_KINDS:
            headers = [f"authorization: Bearer {os.environ['CONSOLE_TOKEN']}",
                       f"x-triage-override: {CORRECT_TIER[kind]}"]
            print("\t".join([prompt["id"], kind, "console", *headers]))
        else:
            print("\t".join([prompt["id"], kind, "app"]))
    for prompt_id, switch in FLAKY:
        headers = [f"x-mock-fail: {switch}", "x-mock-fail-tier: small"]
        print("\t".join([prompt_id, "classify", "flaky", *headers]))


def review(sent_path):
    """Grades every request of the app and the console by its kind; the flaky stream is left to
    what its escalations say."""
    with open(sent_path) as f:
        for line in f:
            phase, prompt_id, kind, stream, decision_id, *_ = line.rstrip("\n").split("\t")
            if phase == "phase" or stream == "flaky":
                continue
            print(json.dumps({"decision_id": decision_id, "correct_tier": CORRECT_TIER[kind],
                              "reviewer": "simulated: tier by prompt kind", "prompt": prompt_id}))


def compare(prompts_path, phase, shipped_path, retrained_path):
    def decisions(path):
        with open(path) as f:
            return {row["id"]: row for row in map(json.loads, f)}

    shipped, retrained = decisions(shipped_path), decisions(retrained_path)

    def cell(row):
        score = "-" if row["score"] is None else f"{row['score']:.4f}"
        return f"{row['tier']:<8} {score:>6}"

    print(f"{'prompt':<12} {'reviewer':<8} | {'shipped model':<15} | {'retrained model':<15}")
    right = {"shipped": 0, "retrained": 0}
    prompts = [p for p in read_prompts(prompts_path) if in_phase(p, int(phase))]
    for prompt in prompts:
        correct = CORRECT_TIER[prompt["kind"]]
        old, new = shipped[prompt["id"]], retrained[prompt["id"]]
        right["shipped"] += old["tier"] == correct
        right["retrained"] += new["tier"] == correct
        print(f"{prompt['id']:<12} {correct:<8} | {cell(old)} | {cell(new)}")
    print(f"reviewer's tier chosen: shipped {right['shipped']}/{len(prompts)}, "
          f"retrained {right['retrained']}/{len(prompts)}")


def embed(config_path, model_path):
    with open(config_path) as f:
        config = json.load(f)
    with open(model_path) as f:
        config["model"] = json.load(f)
    print(json.dumps(config, indent=2))


def check_scores(sent_path, phase, routed_path):
    """The phase's scores as Envoy sent them against the same model's scores from `triage route`, to
    the header's 4 decimals: equal only if the stack runs the model that was just trained."""
    with open(routed_path) as f:
        routed = {row["id"]: row["score"] for row in map(json.loads, f)}
    same = scored = 0
    with open(sent_path) as f:
        for line in f:
            fields = line.rstrip("\n").split("\t")
            if fields[0] != phase or fields[6] == "-":
                continue
            scored += 1
            same += fields[6] == f"{routed[fields[1]]:.4f}"
    print(f"x-triage-score from Envoy equals `triage route --config` with the retrained config "
          f"on {same} of {scored} scored requests")


def same_traffic(sent_path, phase, log_path, config_path, shipped_path):
    """Prices the phase's app and console requests, on the usage their records logged, at the tier
    the deployed model served and at the tier the shipped model would have chosen (the console's
    override applies under both). The flaky stream is left out: its cost depends on escalations."""
    with open(config_path) as f:
        prices = {tier["name"]: tier["price"] for tier in json.load(f)["tiers"]}
    with open(shipped_path) as f:
        shipped = {row["id"]: row["tier"] for row in map(json.loads, f)}
    with open(log_path) as f:
        records = {r["decision_id"]: r for r in map(json.loads, f)}
    served = counterfactual = 0.0
    requests = 0
    with open(sent_path) as f:
        for line in f:
            fields = line.rstrip("\n").split("\t")
            if fields[0] != phase or fields[3] == "flaky":
                continue
            record = records[fields[4]]
            usage = record["usage"]

            def cost(tier):
                price = prices[tier]
                return (usage["prompt_tokens"] * price["input_per_mtok"]
                        + usage["completion_tokens"] * price["output_per_mtok"]) / 1e6

            shipped_tier = record["override"]["to"] if record["override"] else shipped[fields[1]]
            served += cost(record["tier"])
            counterfactual += cost(shipped_tier)
            requests += 1
    print(f"phase {phase}'s {requests} app and console requests on their logged usage: "
          f"${served:.4f} (${served / requests:.6f}/task) as served by the retrained model, "
          f"${counterfactual:.4f} (${counterfactual / requests:.6f}/task) at the shipped model's tiers "
          f"({100 * (served / counterfactual - 1):+.1f}%)")


if __name__ == "__main__":
    command, arguments = sys.argv[1], sys.argv[2:]
    commands = {"bodies": bodies, "plan": plan, "review": review, "compare": compare, "embed": embed,
                "check-scores": check_scores, "same-traffic": same_traffic}
    commands[command](*arguments)
