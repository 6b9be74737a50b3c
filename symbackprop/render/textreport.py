"""Plain-text and JSON reports of a derivation (gradients.txt, gradients.json, terminal).

No raw SymPy reaches either file: gradients.txt is Unicode math in the notation profile
(:func:`symbackprop.render.plain.unicode_math`), gradients.json keeps the canonical names
with readable sums, cases and derivatives (:func:`symbackprop.render.plain.plain`).
"""

from __future__ import annotations

import json

import sympy as sp

from ..engine import general
from ..engine.derive import Derivation
from .notation import Profile, profile
from .plain import UnicodePrinter, plain

STEPS_LIMIT = 2000
"""Above this many parameters, JSON leaves the per-parameter steps out (Derivation.steps has them)."""


def headline(d: Derivation) -> str:
    if not isinstance(d, Derivation):  # a graph of layers
        from . import textreport_graph

        return textreport_graph.headline(d)
    net = d.network
    acts = "/".join(layer.activation.describe() for layer in net.layers)
    return f"{net.name}: {net.architecture} network, {acts}, loss {net.loss.name}, {len(d.parameters):,} parameters"


def gradients_json(d: Derivation, per_weight: str = "auto") -> str:
    """gradients.json: every parameter up to a size, else one entry per layer (see ``Derivation.as_dict``)."""
    if not isinstance(d, Derivation):
        from . import textreport_graph

        return textreport_graph.gradients_json(d)
    data = _readable(d, d.as_dict(steps=False, per_weight=per_weight), len(d.parameters) <= STEPS_LIMIT)
    if len(d.parameters) > STEPS_LIMIT:
        data["steps_omitted"] = f"{len(d.parameters)} parameters > {STEPS_LIMIT}; use Derivation.steps(p)"
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"


def _readable(d: Derivation, data: dict, steps: bool) -> dict:
    """``Derivation.as_dict`` output with every expression printed by :func:`plain` (and the steps added)."""
    if "deltas" in data:
        data["deltas"] = {str(d.delta_symbol(l, j)): plain(d.delta(l, j))
                          for l in range(1, d.L + 1) for j in range(1, d.network.sizes[l] + 1)}
    entries = data.get("gradients", []) + [e for layer in data.get("layers", []) for e in layer["representatives"]]
    by_name = {p.name: p for p in d.parameters}
    for entry in entries:
        p = by_name[entry["parameter"]]
        entry["gradient"] = plain(d.compact_gradient(p))
        if steps:
            entry["steps"] = [{**s.as_dict(), "lhs": plain(s.lhs), "rhs": plain(s.rhs)} for s in d.steps(p)]
    for layer in data.get("layers", []):
        l = layer["layer"]
        form, delta = d.general.layers[l], general.base("delta", l)[general.J]
        layer["delta"] = f"delta{l}[j] = {plain(form.delta.subs(d.sizes))}"
        layer["weight"] = f"dE/dW{l}[j, k] = {plain(delta * form.dz_dW)}"
        if "bias" in layer:
            layer["bias"] = f"dE/db{l}[j] = {plain(delta * form.dz_db)}"
    return data


def report_profile(d: Derivation, notation: str | None = None) -> Profile:
    """The notation profile of the text report: ``notation`` (``--notation``), else the spec's."""
    return profile(notation, d.network.notation)


def gradients_text(d: Derivation, pretty: bool = False, per_weight: str = "auto", notation: str | None = None) -> str:
    """Every delta and every dE/dp (or, above the listing size, each layer's index form and its
    representatives) as Unicode math in the notation profile; ``pretty`` uses SymPy's 2-D unicode layout."""
    if not isinstance(d, Derivation):
        from . import textreport_graph

        return textreport_graph.gradients_text(d)
    if not pretty or not d.lists_every_parameter(per_weight):
        return _unicode_text(d, per_weight, UnicodePrinter(report_profile(d, notation)))
    lines = [f"symbackprop derivation — {headline(d)}", ""]
    if d.target_constraint:
        lines += [f"Assumes {d.target_constraint}.", ""]
    lines.append("Error terms, delta{l}_{j} = dE/dz{l}_{j}:")
    for l in range(d.L, 0, -1):
        for j in range(1, d.network.sizes[l] + 1):
            lines.append(_equation(d.delta_symbol(l, j), d.delta(l, j), pretty))
    lines += ["", "Gradients:"]
    for p in d.parameters:
        lines.append(_equation(sp.Symbol(f"dE/d{p.name}"), d.compact_gradient(p), pretty))
    if d.verification is not None:
        lines += ["", d.verification.summary()]
    return "\n".join(lines) + "\n"


_SUB = str.maketrans("0123456789", "₀₁₂₃₄₅₆₇₈₉")
_SUP = str.maketrans("0123456789", "⁰¹²³⁴⁵⁶⁷⁸⁹")
_STEMS = {"W": "W", "b": "b", "z": "z", "a": "a", "delta": "δ"}


def display_name(name: str) -> str:
    """Canonical name to terminal notation: ``W2_1_3`` -> ``W⁽²⁾₁,₃``, ``x_2`` -> ``x₂``."""
    head, _, rest = name.partition("_")
    stem = head.rstrip("0123456789")
    layer = head[len(stem):]
    if stem not in _STEMS and stem not in ("x", "t"):
        return name
    indices = ",".join(i.translate(_SUB) for i in rest.split("_")) if rest else ""
    sup = f"⁽{layer.translate(_SUP)}⁾" if layer else ""
    return f"{_STEMS.get(stem, stem)}{sup}{indices}"


def _unicode_text(d: Derivation, per_weight: str, pr: UnicodePrinter) -> str:
    """gradients.txt: the deltas and gradients in the profile's symbols."""
    E = pr.doprint(sp.Symbol("E"))

    def grad(p: sp.Symbol) -> str:
        return f"  ∂{E}/∂{pr.doprint(p)} = {pr.doprint(d.compact_gradient(p))}"

    lines = [f"symbackprop derivation — {headline(d)}", ""]
    if d.target_constraint:
        lines += [f"Assumes {d.target_constraint}.", ""]
    delta_l = pr.named("delta", "l", ["j"])
    if not d.lists_every_parameter(per_weight):
        lines.append(f"{len(d.parameters):,} parameters: one entry per layer, the index form and representative "
                     "parameters (--per-weight all lists every parameter).")
        for l in range(d.L, 0, -1):
            form = d.general.layers[l]
            delta = pr.named("delta", l, ["j"])
            weight, bias = pr.named("W", l, ["j", "k"]), pr.named("b", l, ["j"])
            factor = pr.doprint(general.base("delta", l)[general.J] * form.dz_dW)
            lines += ["", f"Layer {l} (j = 1..{d.network.sizes[l]}, k = 1..{d.network.sizes[l - 1]}):",
                      f"  {delta} = {pr.doprint(form.delta.subs(d.sizes))}", f"  ∂{E}/∂{weight} = {factor}"]
            if form.dz_db is not None:
                lines.append(f"  ∂{E}/∂{bias} = {pr.doprint(general.base('delta', l)[general.J] * form.dz_db)}")
            lines += [grad(p) for p in d.representatives(l)]
    else:
        lines.append(f"Error terms, {delta_l} = ∂{E}/∂{pr.named('z', 'l', ['j'])}:")
        for l in range(d.L, 0, -1):
            for j in range(1, d.network.sizes[l] + 1):
                lines.append(f"  {pr.doprint(d.delta_symbol(l, j))} = {pr.doprint(d.delta(l, j))}")
        lines += ["", "Gradients:"] + [grad(p) for p in d.parameters]
    if d.verification is not None:
        lines += ["", d.verification.summary()]
    return "\n".join(lines) + "\n"


def _display(expr: sp.Expr) -> sp.Expr:
    return expr.xreplace({s: sp.Symbol(display_name(s.name)) for s in expr.free_symbols})


def _equation(lhs: sp.Expr, rhs: sp.Expr, pretty: bool = True) -> str:
    if isinstance(lhs, sp.Symbol) and lhs.name.startswith("dE/d"):
        lhs = sp.Symbol("∂E/∂" + display_name(lhs.name[4:]))
    block = sp.pretty(sp.Eq(_display(lhs), _display(rhs), evaluate=False), use_unicode=True, wrap_line=False)
    return "\n".join("  " + row for row in block.splitlines())
