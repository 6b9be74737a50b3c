"""The update rules of the spec's optimizer, the aima update-rule form, and the verification line."""

from __future__ import annotations

import sympy as sp

from ...engine import general
from ...engine.derive import E
from ...engine.general import J, K
from ..latex import ActivationPrime
from .context import Context, dollar_parts, idx, number, optimizer_title, reversed_layers, rn, sci_exact
from .model import Heading, Section, m, para, strong


def section(ctx: Context) -> Section:
    return Section("Update rules", blocks(ctx))


def blocks(ctx: Context) -> list:
    """The optimizer's settings and its update rules, output layer first."""
    p, opt = ctx.prof, ctx.net.optimizer
    sec = Section("Update rules")
    settings = {"sgd": "", "momentum": f", momentum $\\mu = {number(opt.momentum)}$",
                "adam": (f", $\\beta_1 = {number(opt.beta1)}$, $\\beta_2 = {number(opt.beta2)}$, "
                         f"$\\epsilon = {sci_exact(opt.epsilon) if opt.epsilon < 1e-3 else number(opt.epsilon)}$")
                }[opt.name]
    tail = ("; each parameter moves against its gradient"
            + (" (the moments start at zero; the step counter is " if opt.name == "adam" else
               " (the velocity starts at zero):" if opt.name == "momentum" else ":"))
    title = optimizer_title(opt.name)
    parts = [strong("Updates."), f" {title[0].upper()}{title[1:]} with learning rate ",
             m(f"{p.learning_rate} = {number(opt.learning_rate)}"), *dollar_parts(settings), tail]
    if opt.name == "adam":
        parts += [m(r"\tau"), "):"]
    sec.blocks.append(para(*parts))
    sec.blocks.append(ctx.display_pairs(update_pairs(ctx), relation=r"\leftarrow"))
    if opt.name == "adam":
        sec.blocks.append(para(m(r"\oslash"), " is element-wise division; squares and square roots of matrices "
                               "act element by element too."))
    if p.descent_sign == "plus" and opt.name == "sgd":
        w = ctx.gpr.doprint(rn(general.base("W", ctx.d.L)[J, K], {J: idx("k"), K: idx("j")}))
        sec.blocks.append(para("Per weight, with ", m(rf"{p.delta}_{{k}} = -\delta_{{k}}"),
                               ", these are the rules ",
                               m(rf"{w} \leftarrow {w} + {p.learning_rate}\, a_{{j}}\, {p.delta}_{{k}}"),
                               " (derived below)."))
    return sec.blocks


def update_pairs(ctx: Context) -> list:
    """The updates two by two (a layer's weight and bias, or a velocity and its step), one row each pair."""
    rows = update_rows(ctx)
    pairs = []
    for i in range(0, len(rows), 2):
        first, second = rows[i], rows[i + 1] if i + 1 < len(rows) else None
        label = ", ".join(dict.fromkeys(x for x in (first[2], second and second[2]) if x))
        pairs.append((first[:2], second[:2] if second else None, label))
    return pairs


def update_rows(ctx: Context) -> list:
    """Each update, output layer first; a rule's name only where it first appears."""
    seen, rows = set(), []
    for eq in reversed_layers(ctx.d.matrix.updates()):
        rows.append((eq.lhs, eq.rhs, "" if eq.rule in seen else eq.rule))
        seen.add(eq.rule)
    return rows


def verification_line(ctx: Context):
    v = ctx.d.verification
    if v is None:
        return para("Verification: skipped (--no-verify); the results below are unchecked.")
    verdict = "passed" if v.passed else "FAILED"
    tiers = ", ".join(f"{t.name} {t.equal}/{t.checked}" if t.run and t.checked else f"{t.name} {t.result}" for t in v.tiers)
    return para(strong(f"Verification {verdict}"), f" (--verify {v.mode}, equal of checked): {tiers}.")


def monash_blocks(ctx: Context) -> list:
    """The aima (Monash) form: Delta = -delta, and the update w <- w + alpha a Delta."""
    d, p, L = ctx.d, ctx.prof, ctx.d.L
    blocks = [Heading(para(f"The update-rule form ({p.name} profile)"))]
    w = ctx.gpr.doprint(rn(general.base("W", L)[J, K], {J: idx("k"), K: idx("j")}))
    blocks.append(para("Write ", m(rf"{p.delta}_{{j}} = -\delta_{{j}}"), " for each unit ", m("j"),
                       ". Gradient descent ",
                       m(rf"{w} \leftarrow {w} - {p.learning_rate}\, \partial {p.loss}/\partial {w}"),
                       " then becomes an addition. Substituting ", m(rf"\delta_{{j}} = -{p.delta}_{{j}}"),
                       " into the results above gives, for a unit ", m("k"), " of the output layer and a unit ",
                       m("j"), " of the layer before it:"))
    alpha = sp.Symbol("alpha")
    rename_out = {J: idx("k"), K: idx("j")}
    outform = d.general.layers[L]
    Dk = general.base("Delta", L)
    dk = general.base("delta", L)
    rows = []
    if outform.fprime is not None:
        dE_da = ctx.output_error_derivative()
        prime = ActivationPrime(L, general.base("z", L)[J])
        minus = sp.Mul(-1, sp.Derivative(E, general.base("a", L)[J]), prime, evaluate=False)
        rows.append((Dk[J], minus, "definition, chain rule"))
        rows.append(("", sp.Mul(-dE_da, prime, evaluate=False), "derivative of the loss"))
    else:
        rows.append((Dk[J], -outform.delta, rf"${p.delta} = -\delta$"))
    generic_a = {general.base("a", L - 1): sp.IndexedBase("a", real=True)}
    rename_out = {**rename_out, **generic_a}
    rows = [(rn(a, rename_out), rn(b, rename_out), c) for a, b, c in rows]
    blocks.append(ctx.display(rows, general_form=True))
    Wout = general.base("W", L)[J, K]
    w_rows = [(Wout, sp.Add(Wout, sp.Mul(-1, alpha, dk[J] * outform.dz_dW, evaluate=False), evaluate=False),
               "gradient descent")]
    plus = (Wout - alpha * dk[J] * outform.dz_dW).xreplace({dk[J]: -Dk[J]})
    w_rows.append(("", plus, rf"${p.delta} = -\delta$"))
    w_rows = [(rn(a, rename_out), rn(b, rename_out), c) for a, b, c in w_rows]
    blocks.append(ctx.display(w_rows, general_form=True, relation=r"\leftarrow"))
    if L >= 2:
        l = L - 1
        form = d.general.layers[l]
        Dj, Dn = general.base("Delta", l), general.base("Delta", l + 1)
        dn, dj = general.base("delta", l + 1), general.base("delta", l)
        rename = {J: idx("j"), K: idx("k")}
        rename_w = {J: idx("j"), K: idx("i"), general.base("a", l - 1): sp.IndexedBase("a", real=True)}
        hidden = -ctx.named_delta(l).xreplace({dn[K]: -Dn[K]})
        hidden = sp.Mul(*[sp.factor_terms(f) for f in sp.Mul.make_args(sp.factor_terms(hidden))],
                        evaluate=False)
        blocks.append(para("For a unit ", m("j"), " of a hidden layer, its inputs ", m("i"),
                           " and the units ", m("k"), " it feeds:"))
        blocks.append(ctx.display([(rn(Dj[J], rename), rn(hidden, rename), rf"${p.delta} = -\delta$")],
                                  general_form=True))
        Wh = general.base("W", l)[J, K]
        upd = (Wh - alpha * dj[J] * form.dz_dW).xreplace({dj[J]: -Dj[J]})
        blocks.append(ctx.display([(rn(Wh, rename_w), rn(upd, rename_w),
                                    rf"gradient descent, $\delta = -{p.delta}$")],
                                  general_form=True, relation=r"\leftarrow"))
        if l == 1:
            blocks.append(para("The inputs of the first hidden layer are the network inputs, ",
                               m(f"a_{{i}} = {p.input}_{{i}}"), "."))
    return blocks
