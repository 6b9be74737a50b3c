"""The document of one derivation: results first (diagram, forward pass, backpropagation equations,
updates, verification line), then the derivations, the worked example and the appendix (notation
table, batch form, verification).  The Markdown keeps its appendix in a companion file
(``appendix.md``, :func:`build_appendix`); the LaTeX document holds it."""

from __future__ import annotations

from ...engine.derive import Derivation
from ..notation import profile as notation_profile
from . import appendix, derivations, diagram, equations, forward, symbols, updates, worked
from .context import Context
from .model import Display, Document, Section, m, para

APPENDIX_FILE = "appendix.md"
"""The Markdown document's companion: notation table, batch form, verification details."""


def context(d: Derivation, notation: str | None = None, per_weight: str = "auto") -> Context:
    return Context(d, notation_profile(notation, d.network.notation), per_weight)


def results_section(ctx: Context) -> Section:
    """Page one: the diagram, the forward pass, the backpropagation equations, the updates and the
    verification line, each equation once (index form, then matrix form with its shape)."""
    sec = diagram.section(ctx)
    sec.blocks.insert(0, updates.verification_line(ctx))
    sec.blocks.extend(forward.results_blocks(ctx))
    backward, rules = equations.results_blocks(ctx), updates.blocks(ctx)
    if ctx.net.optimizer.name == "sgd" and len(rules) == 2 and backward[1].tags == rules[1].tags:
        (intro, display), (_, steps) = backward, rules  # plain SGD: its rules close the same display
        intro.parts[-1] = ("text", intro.parts[-1][1].replace(", gradients:", ", gradients and updates (SGD, "))
        intro.parts += [m(f"{ctx.prof.learning_rate} = {ctx.net.optimizer.learning_rate:g}"), ("text", "):")]
        backward = [intro, Display(display.rows + steps.rows, display.labels + steps.labels, display.tags)]
        rules = []
    sec.blocks.extend(backward + rules)
    return sec


def appendix_sections(ctx: Context) -> list[Section]:
    return [symbols.section(ctx), equations.batch_section(ctx), appendix.verification_section(ctx)]


def build(d: Derivation, notation: str | None = None, per_weight: str = "auto",
          appendix_file: str | None = None) -> Document:
    """The document model of ``d`` in the profile ``notation`` (default: the spec's, else seed).

    With ``appendix_file`` the notation table, batch form and verification details are left to that
    companion file (:func:`build_appendix`) and the document ends with a pointer to it."""
    ctx = context(d, notation, per_weight)
    sections = [results_section(ctx), derivations.section(ctx)]
    example = worked.section(ctx)
    if example is not None:
        sections.append(example)
    if appendix.listing_place(ctx) == "appendix":
        sections.append(appendix.per_weight_section(ctx))
    if appendix_file is None:
        sections += appendix_sections(ctx)
    else:
        sections.append(Section("Appendix", [para(f"The notation table (every symbol with its meaning and "
                                                  f"shape), the batch form and the verification details: "
                                                  f"{appendix_file}.")]))
    return Document(f"Backpropagation for {ctx.net.name}", ctx.prof, diagram.summary(ctx), sections)


def build_appendix(d: Derivation, notation: str | None = None, per_weight: str = "auto") -> Document:
    """The Markdown document's companion: the appendix sections of :func:`build`."""
    ctx = context(d, notation, per_weight)
    summary = para(f"Companion to derivation.md of {ctx.net.name}: the notation, the batch form and the "
                   f"verification. Notation: the {ctx.prof.name} profile.")
    return Document(f"Appendix: {ctx.net.name}", ctx.prof, summary, appendix_sections(ctx))


def build_per_weight(d: Derivation, notation: str | None = None, per_weight: str = "auto") -> Document | None:
    """The separate per-weight listing (``per_weight.md``/``.tex``), or None when the document holds it."""
    ctx = context(d, notation, per_weight)
    if appendix.listing_place(ctx) != "file":
        return None
    sec = appendix.per_weight_section(ctx, "The chain rule for every parameter")
    sec.newpage = False
    summary = para(f"Companion to derivation.md of {ctx.net.name}: the chain rule for each of its "
                   f"{len(d.parameters)} parameters. Notation: the {ctx.prof.name} profile.")
    return Document(f"Every parameter of {ctx.net.name}", ctx.prof, summary, [sec])
