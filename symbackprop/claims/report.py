"""Terminal and JSON reports of claim verdicts (stable JSON schema)."""

from __future__ import annotations

import json

from .checker import METHOD, Verdict

MARKS = {"correct": "✓", "incorrect": "✗", "skipped": "-", "cannot-check": "?"}


def verdicts_text(verdicts: list[Verdict]) -> str:
    lines = []
    for v in verdicts:
        lines.append(f"{MARKS[v.verdict]} [{v.line}] {v.claim}")
        if v.verdict == "correct":
            sym = f"; symbolic: {v.symbolic}" if v.symbolic and v.symbolic.startswith("proven") else ""
            lines.append(f"    correct ({v.checked} numeric comparisons{sym})")
        elif v.verdict == "cannot-check":
            lines.append(f"    cannot check: {v.reason}")
        else:
            lines.append(f"    diagnosis: {v.diagnosis}")
            if v.expected:
                lines.append(f"    fix:       {v.expected}")
            ce = v.counterexample or {}
            where = ", ".join(f"{k}={n}" for k, n in ce.get("indices", {}).items())
            lines.append(f"    counterexample{' at ' + where if where else ''}: left side {ce.get('left')}, "
                         f"right side {ce.get('right')} (x={ce.get('x')}, target={ce.get('target')}, "
                         f"learning rate={ce.get('learning_rate')}; parameters in --json)")
    counts = {k: sum(v.verdict == k for v in verdicts) for k in MARKS}
    lines.append(f"{counts['correct']} correct, {counts['incorrect']} incorrect, "
                 f"{counts['skipped']} skipped, {counts['cannot-check']} cannot-check")
    lines.append(f"method: {METHOD}")
    return "\n".join(lines) + "\n"


def verdicts_json(verdicts: list[Verdict]) -> str:
    return json.dumps({"method": METHOD, "claims": [v.as_dict() for v in verdicts]}, indent=2,
                      ensure_ascii=False) + "\n"
