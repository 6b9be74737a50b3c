"""The appendix: the per-weight listing (in the document for tiny nets, else in per_weight.md/.tex)
and the verification table."""

from __future__ import annotations

from .context import Context, sci
from .derivations import unit_blocks
from .model import Section, Table, m, para

APPENDIX_LIMIT = 8
"""Nets with at most this many parameters list every parameter in the document's appendix; larger
ones (up to :data:`~symbackprop.engine.derive.PER_WEIGHT_LIMIT`, or any with --per-weight all) in
``per_weight.md`` and ``per_weight.tex``."""


def listing_place(ctx: Context) -> str:
    """Where every parameter's chain rule goes: "appendix", "file" or "none" (representatives only)."""
    if not ctx.every_parameter():
        return "none"
    return "appendix" if len(ctx.d.parameters) <= APPENDIX_LIMIT else "file"


def per_weight_section(ctx: Context, title: str = "Appendix: the chain rule for every parameter") -> Section:
    d = ctx.d
    sec = Section(title, newpage=True)
    sec.blocks.append(para("Every parameter, unit by unit from the output layer backwards, with the steps of "
                           "the derivations section."))
    for l in range(d.L, 0, -1):
        for j in range(1, ctx.net.sizes[l] + 1):
            params = [q for q in d.parameters if d.graph.layer_of(q)[:2] == (l, j)]
            sec.blocks.extend(unit_blocks(ctx, l, j, params))
    return sec


def verification_section(ctx: Context) -> Section:
    v = ctx.d.verification
    sec = Section("Appendix: verification")
    if v is None:
        sec.blocks.append(para("Verification was skipped (--no-verify); the results above are unchecked."))
        return sec
    info = v.as_dict()
    verdict = "passed" if info["passed"] else "FAILED"
    sec.blocks.append(para(f"Verification {verdict} (--verify {v.mode}). Each result was checked "
                           "independently of how it was derived, in tiers chosen by their cost:"))
    rows = []
    for tier in v.tiers:
        how = tier.how.split("; rule ")[0] if tier.how else ""
        what = "; ".join(filter(None, [how, tier.covered and f"covered: {tier.covered}",
                                       tier.not_covered and f"not checked: {tier.not_covered}"]))
        if tier.name == "numeric":
            rows.append([para(tier.name), para(what + "; rule ", m(rule_tex(info["rule"]))),
                         para(f"{tier.result}; max abs. error ", m(sci(info["max_abs_error"])), ", relative ",
                              m(sci(info["max_rel_error"])))])
        else:
            rows.append([para(tier.name), para(what), para(tier.result)])
    sec.blocks.append(Table([para("check"), para("how"), para("result")], rows))
    if info.get("failures"):
        sec.blocks.append(para("Failures: " + "; ".join(info["failures"][:10])))
    return sec


def rule_tex(rule: str) -> str:
    # "|derived - finite difference| <= 1e-08 + 1e-06 * |finite difference|"
    import re

    numbers = re.findall(r"[0-9.]+e-?[0-9]+", rule)
    if len(numbers) == 2:
        return (rf"\lvert\text{{derived}} - \text{{fd}}\rvert \le {sci(float(numbers[0]))} + "
                rf"{sci(float(numbers[1]))}\, \lvert\text{{fd}}\rvert")
    return rf"\text{{{rule}}}"
