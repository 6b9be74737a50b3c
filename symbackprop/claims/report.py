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
            if "point" in ce:  # a layer claim (claims.layers)
                lines.append(f"    {_counterexample_line(v)}")
                continue
            where = ", ".join(f"{k}={n}" for k, n in ce.get("indices", {}).items())
            lines.append(f"    counterexample{' at ' + where if where else ''}: left side {ce.get('left')}, "
                         f"right side {ce.get('right')} (x={ce.get('x')}, target={ce.get('target')}, "
                         f"learning rate={ce.get('learning_rate')}; parameters in --json)")
    counts = {k: sum(v.verdict == k for v in verdicts) for k in MARKS}
    lines.append(f"{counts['correct']} correct, {counts['incorrect']} incorrect, "
                 f"{counts['skipped']} skipped, {counts['cannot-check']} cannot-check")
    lines.append(f"method: {next((v.method for v in verdicts if v.method), METHOD)}")
    return "\n".join(lines) + "\n"


def verdicts_json(verdicts: list[Verdict]) -> str:
    return json.dumps({"method": METHOD, "claims": [v.as_dict() for v in verdicts]}, indent=2,
                      ensure_ascii=False) + "\n"


# ----------------------------------------------------------------------------- notes files

def _counterexample_line(v: Verdict) -> str | None:
    ce = v.counterexample or {}
    if not ce:
        return None
    if "left" not in ce:
        return f"counterexample: {ce.get('note') or ce}"
    where = ", ".join(f"{k}={n}" for k, n in ce.get("indices", {}).items())
    if "point" in ce:  # a layer claim (claims.layers): the size and the random point
        where = ", ".join([f"size {ce['size']}"] + ([where] if where else []))
        point = ", ".join(f"{k}={n}" for k, n in ce["point"].items())
        return f"counterexample at {where}: left side {ce['left']}, right side {ce['right']} ({point})"
    shape = f"; {ce['shape_error']}" if ce.get("shape_error") else ""
    return (f"counterexample{' at ' + where if where else ''}: left side {ce.get('left')}, right side "
            f"{ce.get('right')} (x={ce.get('x')}, target={ce.get('target')}, learning rate={ce.get('learning_rate')}"
            f"; parameters in --json){shape}")


def _same_skip(a, b) -> bool:
    return (a.verdict.verdict == b.verdict.verdict == "skipped" and a.formula == b.formula
            and a.verdict.reason == b.verdict.reason)


def summary_line(verdicts: list[Verdict]) -> str:
    counts = {k: sum(v.verdict == k for v in verdicts) for k in MARKS}
    return (f"{len(verdicts)} claims, {counts['correct']} correct, {counts['incorrect']} incorrect, "
            f"{counts['skipped']} skipped, {counts['cannot-check']} cannot-check")


def notes_text(name: str, checked: list, profiles: dict[str, str], network: str) -> str:
    """The report of a notes file, in file order: ``name:line mark claim`` and what to do about it."""
    lines = [f"{name}: {network}"]
    shown_sections: set[str] = set()
    noted: set[tuple[str, str]] = set()
    for n, c in enumerate(checked):
        v = c.verdict
        if v.verdict == "skipped" and n > 0 and _same_skip(checked[n - 1], c):
            continue  # folded into the line of the first skipped row of this formula
        if c.section not in shown_sections:
            shown_sections.add(c.section)
            title = f"section {c.section!r}" if c.section else "before the first heading"
            lines.append(f"-- {title}: notation {profiles.get(c.section, c.profile)}")
        where = f"{name}:{c.line}" + (f" (cell {c.cell}, line {c.cell_line})" if c.cell is not None else "")
        if v.verdict == "skipped":
            run = [c.verdict.claim]
            for later in checked[n + 1:]:
                if not _same_skip(c, later):
                    break
                run.append(later.verdict.claim)
            shown = run[0] if len(run) == 1 else f"{len(run)} rows: {', '.join(run)}"
            lines.append(f"{where} {MARKS[v.verdict]} {shown}   (skipped: {v.reason or v.note})")
            continue
        lines.append(f"{where} {MARKS[v.verdict]} {v.claim}")
        if v.verdict == "incorrect":
            lines.append(f"    diagnosis: {v.diagnosis}")
            if v.expected:
                lines.append(f"    fix:       {v.expected}")
            ce = _counterexample_line(v)
            if ce:
                lines.append(f"    {ce}")
        elif v.verdict == "cannot-check":
            lines.append(f"    cannot check: {v.reason or v.note}")
        if v.note and v.verdict != "skipped" and v.note != v.reason:
            parts = [p for p in v.note.split("; ") if (c.section, p) not in noted]  # each note once a section
            noted.update((c.section, p) for p in parts)
            if parts:
                lines.append(f"    note: {'; '.join(parts)}")
    lines.append(summary_line([c.verdict for c in checked]))
    return "\n".join(lines) + "\n"


def notes_json(checked: list) -> str:
    """``--json`` for a notes file: a list of objects (line, claim, verdict, note, diagnosis, ...)."""
    return json.dumps([c.as_dict() for c in checked], indent=2, ensure_ascii=False) + "\n"
