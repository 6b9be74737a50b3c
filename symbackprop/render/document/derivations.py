"""The derivations of the equations: each step of the chain rule named, for one representative unit
and parameter per layer (the per-weight listing reuses :func:`unit_blocks` for every unit)."""

from __future__ import annotations

import sympy as sp

from ...engine import general
from ...engine.derive import Step
from ...engine.general import K
from ..latex import ActivationFn, aligned, rhs_lines
from .context import Context, in_order, label_math, no_leading_minus, put_in, width
from .model import Display, Heading, Section, m, para


def rule_label(s: Step) -> str:
    """The name of the rule a step applies, as a reader checks it."""
    if s.rule == "derivative of the activation (convenient form)" or (
            s.rule == "derivative of the activation" and "convenient" in s.note):
        return "written with the output"
    if s.rule == "sum rule (only one term depends on the variable)":
        return "sum rule, one term depends on it"
    return s.rule.replace("k = j", "$k = j$")


def section(ctx: Context) -> Section:
    d = ctx.d
    sec = Section("Derivations")
    general_steps = _general_steps(ctx)
    if general_steps is not None:
        from .general_steps import blocks

        sec.blocks.extend(blocks(ctx, general_steps))
        sec.blocks.append(Heading(para("One weight per layer, concretely")))
        sec.blocks.append(para("The same steps for the first weight of each layer, output layer first; every other "
                               "parameter follows them with its own indices" + _listing_pointer(ctx) + "."))
        chains = []
        for l in range(d.L, 0, -1):
            q = next(q for q in d.parameters if d.graph.layer_of(q)[:2] == (l, 1))
            chains.append(chain_block(ctx, [s for s in d.steps(q) if s not in d.delta_steps(l, 1)]))
        sec.blocks.append(Display([r for c in chains for r in c.rows], [lb for c in chains for lb in c.labels]))
        if ctx.prof.descent_sign == "plus":
            from .updates import monash_blocks

            sec.blocks.extend(monash_blocks(ctx))
        return sec
    sec.blocks.append(para(
        "Each derivation starts from the chain rule and names the rule used in each step. The error term of a "
        "unit is derived once and then used by every parameter of that unit. Layers are taken from the output "
        "backwards, as backpropagation does; one unit and one weight per layer (and one bias) stand for all the "
        "others, which follow the same steps with their own indices" + _listing_pointer(ctx) + "."))
    for l in range(d.L, 0, -1):
        params = [q for q in d.parameters if d.graph.layer_of(q)[:2] == (l, 1)]
        biases = [q for q in params if q.name.startswith("b")][:1] if l == d.L else []
        params = params[:1] + biases  # the bias derivation once, at the output layer
        sec.blocks.extend(unit_blocks(ctx, l, 1, params))
    return sec


def _listing_pointer(ctx: Context) -> str:
    from .appendix import listing_place

    place = listing_place(ctx)
    return {"appendix": " (every parameter: appendix)", "file": " (every parameter: per_weight.md)",
            "none": " (--per-weight all lists every parameter)"}[place]


def _general_steps(ctx: Context):
    """``engine.steps.general_steps(network)`` when the engine provides it, else None."""
    try:
        from ...engine.steps import general_steps
    except ImportError:
        return None
    return general_steps(ctx.net)


def general_unit(z: sp.Symbol) -> sp.Symbol:
    """``z2_3`` -> ``a2_3``: the output of the same unit."""
    return sp.Symbol("a" + z.name[1:])


def unit_blocks(ctx: Context, l: int, j: int, params) -> list:
    d = ctx.d
    blocks = [Heading(para(f"Unit {j} of layer {l}: error term ", m(ctx.tex(d.delta_symbol(l, j)))))]
    delta_steps = d.delta_steps(l, j)
    blocks.extend(step_blocks(ctx, delta_steps, l))
    for q in params:
        steps = [s for s in d.steps(q) if s not in delta_steps]
        blocks.append(para("Parameter ", m(ctx.tex(q)), ":"))
        blocks.append(chain_block(ctx, steps))
    return blocks


def chain_block(ctx: Context, steps: list[Step]) -> Display:
    """One chain of equalities: each step rewrites a factor of the running expression."""
    first, rows, labels = steps[0], [], []
    current = first.rhs
    named = [s for s in steps[1:] if s.rule == "definition of delta" and current.has(s.lhs)]
    if named:  # dL/dz = delta put in at once: one row less
        current = put_in(current, {s.lhs: s.rhs for s in named})
        steps = [Step("chain rule, definition of delta", first.lhs, current)] + [s for s in steps[1:] if s not in named]
        first = steps[0]

    def add(lhs: str, expr, label: str) -> None:
        text = in_order(expr, ctx.pr) if named else None
        new = aligned(lhs, [text] if text else rhs_lines(expr, ctx.pr, width(label)))
        rows.extend(new)
        labels.extend([label] + [""] * (len(new) - 1))

    add(ctx.pr.doprint(first.lhs), current, rule_label(first))
    for s in steps[1:]:
        if s.rule == "result":
            if sp.expand(current - s.rhs) != 0:
                add("", s.rhs, "result")
            continue
        if current.has(s.lhs):
            current = put_in(current, {s.lhs: s.rhs})
            add("", current, rule_label(s))
        else:
            add(ctx.pr.doprint(s.lhs), s.rhs, rule_label(s))
    return Display(rows, labels)


def already_written_with(act, derived: sp.Expr, name: str) -> bool:
    """True when SymPy's f' already reads in the function itself under its own name (1 - tanh^2 for
    tanh in the seed profile): a row "written with tanh" would repeat it."""
    own = isinstance(act.expr, sp.Function) and derived.has(act.expr.func)
    return own and name == act.latex


def step_blocks(ctx: Context, steps: list[Step], l: int) -> list:
    """Rows of a step list: a step continues the previous one when it rewrites its lhs or rhs."""
    pr, rows, labels, notes = ctx.pr, [], [], []
    prev: Step | None = None
    act = ctx.net.layers[l - 1].activation
    for s in steps:
        label = rule_label(s)
        rhs = s.rhs
        if act.vector and s.rule == "derivative of the loss":
            label += ", $k = 1$"
        elif act.vector and s.rule == "derivative of the activation":
            same = s.lhs.expr == general_unit(s.lhs.variables[0])
            label = "softmax derivative, $k = j$" if same else r"softmax derivative, $k \neq j$"
            rhs = no_leading_minus(rhs)
        lines = rhs_lines(rhs, pr, width(label))
        if prev is not None and (s.lhs == prev.lhs or s.lhs == prev.rhs) and s.rule != "result":
            if (s.rule.startswith("derivative of the activation") and prev.rule == "derivative of the activation"
                    and act.uses_output and s.lhs == prev.lhs):
                zj = s.lhs.variables[0]
                if not already_written_with(act, prev.rhs, ctx.functions[l]):
                    # f' in terms of the function, named as the profile names it (sigma, g_1, phi_2)
                    rows.append(rf"&= {pr.doprint(act.derivative_at(zj, ActivationFn(l, zj)))}")
                    labels.append(f"written with {label_math(ctx.functions[l]) or act.name}")
                label = "written with the output"
            new = aligned("", lines)
        elif not isinstance(s.lhs, (sp.Derivative, sp.Symbol)):  # the chain's product with the factors put in
            inner = {e: no_leading_minus(e) for e in s.lhs.atoms(sp.Mul) if no_leading_minus(e) != e}
            with sp.evaluate(False):  # a (1 - a) for -a (a - 1), nothing cancelled
                product = s.lhs.xreplace(inner)
            put = aligned(pr.doprint(steps[0].lhs), rhs_lines(product, pr, width("substitution")))
            rows.extend(put)
            labels.extend(["substitution"] + [""] * (len(put) - 1))
            new = aligned("", lines)
        else:
            new = aligned(pr.doprint(s.lhs), lines)
        rows.extend(new)
        labels.extend([label] + [""] * (len(new) - 1))
        if "convention" in s.note:
            notes.append(para("Convention: " + s.note.split("convention: ", 1)[1] + "."))
        if s.rule == "simplification" and ctx.d.simplifies_to_error:
            text = "The error term simplifies to "
            if "cross_entropy" in ctx.net.loss.name:
                text = "Cross-entropy meets its matching output activation, so the error term simplifies to "
            notes.append(para(text, m(rf"{ctx.vec('a', ctx.d.L)} - {ctx.prof.target}"),
                              f", using that {ctx.d.target_constraint}." if ctx.d.target_constraint else "."))
        dummies = [a for a in s.rhs.free_symbols if isinstance(a, sp.Dummy)]
        if dummies and isinstance(s.lhs, sp.Derivative):
            S = sp.Sum(sp.exp(general.base("z", ctx.d.L)[K]), (K, 1, ctx.net.sizes[ctx.d.L]))
            notes.append(para("Here ", m(rf"S = {pr.doprint(S)}"), " is the softmax denominator."))
            out, z = s.lhs.expr, s.lhs.variables[0]
            rewritten = no_leading_minus(sp.factor(s.rhs.subs(sp.exp(z), out * dummies[0])))
            if not rewritten.has(dummies[0]):
                rows.append(rf"&= {pr.doprint(rewritten)}")
                labels.append(f"with ${pr.doprint(sp.exp(z))} = {pr.doprint(out)} S$")
        prev = s
    return [Display(rows, labels), *notes]
