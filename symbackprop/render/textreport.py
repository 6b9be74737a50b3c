"""Plain-text and JSON reports of a derivation (gradients.txt, gradients.json, terminal)."""

from __future__ import annotations

import json

import sympy as sp

from ..engine.derive import Derivation

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
    data = d.as_dict(steps=len(d.parameters) <= STEPS_LIMIT, per_weight=per_weight)
    if len(d.parameters) > STEPS_LIMIT:
        data["steps_omitted"] = f"{len(d.parameters)} parameters > {STEPS_LIMIT}; use Derivation.steps(p)"
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"


def gradients_text(d: Derivation, pretty: bool = False, per_weight: str = "auto") -> str:
    """Every delta and every dE/dp (or, above the listing size, each layer's index form and its
    representatives), readable; ``pretty`` uses SymPy's 2-D unicode layout."""
    if not isinstance(d, Derivation):
        from . import textreport_graph

        return textreport_graph.gradients_text(d)
    lines = [f"symbackprop derivation — {headline(d)}", ""]
    if d.target_constraint:
        lines += [f"Assumes {d.target_constraint}.", ""]
    if not d.lists_every_parameter(per_weight):
        lines.append(f"{len(d.parameters):,} parameters: one entry per layer, the index form and representative "
                     "parameters (--per-weight all lists every parameter).")
        for l in range(d.L, 0, -1):
            t = d.layer_templates(l)
            lines += ["", f"Layer {l} ({t['ranges']}):", f"  {t['delta']}", f"  {t['weight']}"]
            if "bias" in t:
                lines.append(f"  {t['bias']}")
            for p in d.representatives(l):
                lines.append(_equation(sp.Symbol(f"dE/d{p.name}"), d.compact_gradient(p), pretty))
        if d.verification is not None:
            lines += ["", d.verification.summary()]
        return "\n".join(lines) + "\n"
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


def _display(expr: sp.Expr) -> sp.Expr:
    return expr.xreplace({s: sp.Symbol(display_name(s.name)) for s in expr.free_symbols})


def _equation(lhs: sp.Expr, rhs: sp.Expr, pretty: bool) -> str:
    if not pretty:
        return f"  {lhs} = {sp.sstr(rhs)}"
    if isinstance(lhs, sp.Symbol) and lhs.name.startswith("dE/d"):
        lhs = sp.Symbol("∂E/∂" + display_name(lhs.name[4:]))
    block = sp.pretty(sp.Eq(_display(lhs), _display(rhs), evaluate=False), use_unicode=True, wrap_line=False)
    return "\n".join("  " + row for row in block.splitlines())
