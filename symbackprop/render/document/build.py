"""The document of one derivation: results first (diagram, forward pass, backpropagation equations,
updates, verification line), then the derivations, the worked example and the appendix (notation
table, batch form, verification)."""

from __future__ import annotations

from ...engine.derive import Derivation
from ..notation import profile as notation_profile
from . import appendix, derivations, diagram, equations, forward, symbols, updates, worked
from .context import Context
from .model import Document


def context(d: Derivation, notation: str | None = None, per_weight: str = "auto") -> Context:
    return Context(d, notation_profile(notation, d.network.notation), per_weight)


def build(d: Derivation, notation: str | None = None, per_weight: str = "auto") -> Document:
    """The document model of ``d`` in the profile ``notation`` (default: the spec's, else seed)."""
    ctx = context(d, notation, per_weight)
    overview = diagram.section(ctx)
    overview.blocks.extend(equations.glance_blocks(ctx))
    sections = [overview, forward.section(ctx), equations.section(ctx), updates.section(ctx),
                derivations.section(ctx)]
    example = worked.section(ctx)
    if example is not None:
        sections.append(example)
    if appendix.listing_place(ctx) == "appendix":
        sections.append(appendix.per_weight_section(ctx))
    sections += [symbols.section(ctx), equations.batch_section(ctx), appendix.verification_section(ctx)]
    return Document(f"Backpropagation for {ctx.net.name}", ctx.prof, diagram.summary(ctx), sections)


def build_per_weight(d: Derivation, notation: str | None = None, per_weight: str = "auto") -> Document | None:
    """The separate per-weight listing (``per_weight.md``/``.tex``), or None when the document holds it."""
    ctx = context(d, notation, per_weight)
    if appendix.listing_place(ctx) != "file":
        return None
    sec = appendix.per_weight_section(ctx, "The chain rule for every parameter")
    sec.newpage = False
    from .model import para

    summary = para(f"Companion to derivation.md of {ctx.net.name}: the chain rule for each of its "
                   f"{len(d.parameters)} parameters. Notation: the {ctx.prof.name} profile.")
    return Document(f"Every parameter of {ctx.net.name}", ctx.prof, summary, [sec])
