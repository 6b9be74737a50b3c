"""One claim in, one verdict out: the contract between reading notes and judging claims.

The notes reader (file -> formulas -> claim texts) calls only these two functions:

* :func:`new_context` once per section of notes (a notation profile per section);
* :func:`judge` once per claim text, in the notes' order.  It never raises for any
  text: a claim it cannot read is ``cannot-check`` with the reason, a formula that
  is not a claim about the network is ``skipped`` with the reason in ``note``.

Skipped versus cannot-check: a formula is ``skipped`` when it says nothing that could be
true or false of the network -- it has no relation (``x``, a notation entry), it is a
shape or set annotation (``W \\in \\mathbb{R}^{n\\times m}``), it names the loss
abstractly (``E = L(t, y)``), it defines a matrix by its entries (``W^l = (w^l_{jk})``)
or it defines a generic function as an activation the network does not use.  It is
``cannot-check`` when it is a relation about the network that the checker cannot read
(unsupported syntax) or cannot give a meaning on this network (a quantity it does not
know, a layer the network lacks); ``reason`` then says which.

Every verdict of a claim judged is independent of earlier claims: delta's sign
convention is the profile's, and each claim is compared with the true quantities, so a
wrong line never makes later lines wrong.
"""

from __future__ import annotations

import re
from dataclasses import replace

import numpy as np

from ..engine.derive import Derivation
from ..render.notation import profile as make_profile
from .checker import POINTS, Context, Verdict, check_claim
from .evaluate import (
    GENERIC_ACTIVATIONS,
    GRADIENT_NAMES,
    LOSS_NAMES,
    SCORE_NAMES,
    STEP_NAMES,
    Binding,
    Evaluator,
    Truth,
    close,
    kind_of,
    plain_name,
)
from .lexer import ClaimSyntaxError, annotations, normalize, tokenize
from .nodes import Call, Claim, Deriv, Idx, Num, Paren, SumOver, Sym, walk
from .parse import parse_claim
from .printer import print_claim

BATCH_NAMES = {"Z", "A", "X", "Y", "dZ", "dA"}
_RELATION = re.compile(r"=|\\leftarrow|\\gets|\\equiv|\\triangleq|\\coloneqq|<-|←|≡|≔")
_MEMBERSHIP = re.compile(r"\\in(?![A-Za-z])|∈|\\subset|\\mathbb\s*\{?\s*R")
STANDARD_FUNCTIONS = ("sigmoid", "tanh", "relu", "softplus")


def new_context(derivation: Derivation, notation: str | None = None) -> Context:
    """The judging state for one run of claims in one notation profile."""
    if not isinstance(derivation, Derivation):  # a graph spec's layers (claims.layers.LayerClaims)
        from .layers import layer_context
        return layer_context(derivation, notation)
    prof = make_profile(notation, derivation.network.notation)
    ctx = Context(Truth(derivation, points=POINTS), prof)
    ctx.signs = {"delta": 1, "Delta": -1 if prof.descent_sign == "plus" else 1,
                 plain_name(prof.delta): -1 if prof.descent_sign == "plus" and prof.delta != r"\delta" else 1}
    return ctx


def profile_quantities(ctx: Context) -> frozenset:
    """Letters that name quantities in this profile although they usually name functions
    (Goodfellow's h for the activation)."""
    names = (ctx.profile.preactivation, ctx.profile.activation_value, ctx.profile.weight, ctx.profile.input)
    return frozenset(plain_name(x) for x in names)


def profile_words(ctx: Context) -> frozenset:
    """Multi-letter names of the profile (a spec's ``loss: Loss``) that the lexer keeps whole."""
    names = (ctx.profile.loss, ctx.profile.weight, ctx.profile.bias, ctx.profile.preactivation,
             ctx.profile.activation_value, ctx.profile.target, ctx.profile.input)
    return frozenset(n for n in (plain_name(x) for x in names) if len(n) > 1 and n.isalpha())


def judge(text: str, ctx: Context) -> Verdict:
    """The verdict on one claim text (a single relation, or a chain ``a = b = c``)."""
    if not isinstance(ctx, Context):  # a graph spec's layers
        from .layers import judge_layers
        return judge_layers(text, ctx)
    try:
        return _judge(text, ctx)
    except Exception as exc:  # noqa: BLE001 - the contract: never raise for any text
        return Verdict(text, "cannot-check", reason=f"could not judge this claim ({type(exc).__name__}: {exc})")


def _judge(text: str, ctx: Context) -> Verdict:
    ctx.notes = set()
    if _MEMBERSHIP.search(normalize(text)):
        return _skipped(text, "a shape or set annotation (\\in), not a claim about the network's values")
    try:
        claim = parse_claim(text, profile_words(ctx), profile_quantities(ctx))
    except ClaimSyntaxError as exc:
        if not relation_in(text):
            return _skipped(text, "no relation ('=' or '\\leftarrow'): a name or a notation entry, not a claim")
        return Verdict(text, "cannot-check", reason=str(exc))
    return judge_claim(claim, ctx)


def judge_claim(claim: Claim, ctx: Context) -> Verdict:
    """The verdict on a parsed claim (what :func:`judge` does after reading the text)."""
    ctx.notes = set()
    text, written = claim.text, claim
    claim, examples = _per_example_loss(claim, ctx)
    read_lhs = claim.sides[0]
    if examples:
        return _skipped(text, "a sum over training examples; claims are checked one example at a time")
    claim = _function_variable(claim)
    setting = _hyper_parameter(claim, ctx)
    if setting is not None:
        return setting
    if _optimizer_state(claim, ctx):
        return Verdict(text, "cannot-check", reason="uses the optimizer's running state (a velocity or moment "
                       "of a parameter, such as v_{W}); the checker judges gradients and gradient-descent "
                       "steps, not the optimizer's memory between steps")
    variable = _assigned_variable(claim, ctx)
    if ctx.defs:
        claim = _substitute(claim, ctx, keep_lhs=bool(variable))
    if variable:
        ctx.defs[variable] = claim.sides[1]
        return _skipped(text, f"assigns the algorithm's variable {variable}; later claims use it")
    reason = _not_a_claim(claim, ctx)
    if reason:
        return _skipped(text, reason)
    batch = any(isinstance(n, Sym) and (n.name in BATCH_NAMES or n.name == "m" or n.example is not None)
                or isinstance(n, Idx) and n.name == "m" for side in claim.sides for n in walk(side))
    ctx.truth.batch_mode = batch
    try:
        verdict = _judged(claim, ctx)
    finally:
        ctx.truth.batch_mode = False
    if verdict.verdict != "correct" and _BOLD.search(text):
        verdict = _row_reading(claim, ctx, verdict)
    if verdict.expected and written.sides[0] != read_lhs == claim.sides[0]:  # the fix keeps L_i as written
        comma = ctx.profile.index_comma
        read, wrote = print_claim(replace(claim, sides=claim.sides[:1], relations=()), comma), \
            print_claim(replace(written, sides=written.sides[:1], relations=()), comma)
        if verdict.expected.startswith(read + " "):
            verdict.expected = wrote + verdict.expected[len(read):]
    return verdict


_BOLD = re.compile(r"\\(?:mathbf|boldsymbol|bm)\s*\{?\s*\\?[A-Za-z]")


def _row_reading(claim: Claim, ctx: Context, verdict: Verdict) -> Verdict:
    """Bold letters that do not fit as one sample's column vectors: read as a batch with one ROW
    per sample (the generated documents' batch form: X is B x n_0, z, a and delta B x n, 1 a
    column of ones, the loss the batch mean); kept only when that reading is correct."""
    saved = set(ctx.notes)
    ctx.truth.batch_mode = "rows"
    try:
        again = check_claim(claim, ctx)
    finally:
        ctx.truth.batch_mode = False
    if again.verdict != "correct":
        ctx.notes = saved
        return verdict
    note = (f"read bold letters as a batch of B samples stacked as rows (checked with B = {ctx.truth.BATCH}), "
            "the loss as the batch mean")
    again.note = f"{again.note}; {note}" if again.note else note
    return again


def _judged(claim: Claim, ctx: Context) -> Verdict:
    verdict = check_claim(claim, ctx)
    if verdict.verdict == "incorrect":
        verdict = _layer_reading(claim, ctx, verdict)
    if verdict.verdict == "cannot-check" and "different activations" in (verdict.reason or ""):
        verdict = _each_activation(claim, ctx, verdict)
    if verdict.verdict in ("incorrect", "cannot-check"):
        verdict = _generic_definition(claim, ctx, verdict)
    _reading_notes(claim, ctx)
    if ctx.notes:
        verdict.note = "; ".join(sorted(ctx.notes)) if not verdict.note else verdict.note + "; " + "; ".join(
            sorted(ctx.notes))
    return verdict


def _skipped(text: str, reason: str) -> Verdict:
    return Verdict(text, "skipped", reason=reason, note=reason)


def relation_in(text: str) -> bool:
    """Whether a formula has a relation (=, \\leftarrow, ...), so that it was meant as a claim."""
    try:
        body, _ = annotations(normalize(text))
        return any(t.type == "REL" for t in tokenize(body))
    except ClaimSyntaxError:
        return bool(_RELATION.search(text))


def _not_a_claim(claim: Claim, ctx: Context) -> str | None:
    """Why a formula that parses says nothing checkable about the network (or None)."""
    lhs, rhs = claim.sides[0], claim.sides[-1]
    nodes = [n for side in claim.sides for n in walk(side)]
    if isinstance(lhs, Sym) and kind_of(lhs, ctx.profile) == "loss" \
            and any(isinstance(n, Call) and n.func in LOSS_NAMES for n in nodes):
        return "names the loss as an abstract function of the output and target; nothing to check"
    for n in [n for n in nodes if isinstance(n, Deriv)]:
        generic = [s for s in (n.num, n.wrt) if isinstance(s, Sym)
                   and s.name not in GENERIC_ACTIVATIONS and kind_of(s, ctx.profile) != "loss"
                   and (kind_of(s, ctx.profile) == "free" or s is n.num and s.layer is None and s.index is None)]
        if generic:
            return "a rule about generic symbols (not quantities of the network); nothing to check"
    inner = rhs.arg if isinstance(rhs, Paren) else rhs
    if len(claim.sides) == 2 and isinstance(lhs, Sym) and isinstance(inner, Sym) and lhs.index is None \
            and inner.index is not None and lhs.name.lower() == inner.name.lower() and lhs.name != inner.name:
        return "defines a matrix by its entries (notation), nothing to check"
    if len(claim.sides) == 2 and isinstance(lhs, Sym) and isinstance(rhs, Sym) and lhs == rhs:
        return "says a symbol equals itself; nothing to check"
    if len(claim.sides) == 2 and claim.relations == ("=",) and isinstance(lhs, Sym) \
            and kind_of(lhs, ctx.profile) in ("weight", "bias") and (lhs.layer is not None or lhs.index is not None) \
            and lhs not in list(walk(rhs)) and not any(isinstance(n, Deriv) for n in walk(rhs)):
        return "sets a parameter (an initial value), not a claim to check; an update names it on both sides"
    return None


def _assigned_variable(claim: Claim, ctx: Context) -> str | None:
    """``g \\leftarrow \\nabla_{\\hat y} J``: a letter that names no quantity of the network,
    assigned a value (an algorithm's running variable, as in Goodfellow et al.)."""
    lhs = claim.sides[0]
    if len(claim.sides) < 2 or not isinstance(lhs, Sym) or lhs.layer is not None or lhs.index is not None \
            or lhs.hat or kind_of(lhs, ctx.profile) != "free" or len(lhs.name) != 1:
        return None
    return lhs.name


HYPER_PARAMETERS = {"mu": "momentum", "beta1": "beta1", "beta2": "beta2", "epsilon": "epsilon",
                    "varepsilon": "epsilon"}


def _hyper_parameter(claim: Claim, ctx: Context) -> Verdict | None:
    """``\\alpha = 0.5``, ``\\beta_1 = 0.9``: a hyper-parameter given a number, judged against the
    spec's optimizer (the learning rate is otherwise a free symbol of the claims)."""
    lhs, rhs = claim.sides[0], claim.sides[-1]
    if len(claim.sides) != 2 or not isinstance(lhs, Sym) or lhs.layer is not None or lhs.hat \
            or any(isinstance(n, (Sym, Idx, Call, Deriv, SumOver)) for n in walk(rhs)):
        return None
    name = lhs.name + "".join(str(i.value) for i in lhs.index or () if isinstance(i, Num))
    if lhs.index and name == lhs.name:
        return None
    field = "learning_rate" if kind_of(lhs, ctx.profile) == "lr" and not lhs.index else HYPER_PARAMETERS.get(name)
    if field is None:
        return None
    opt = ctx.truth.net.optimizer
    if field != "learning_rate" and not (field == "momentum" and opt.name == "momentum"
                                         or field != "momentum" and opt.name == "adam"):
        return None
    try:
        value = float(Evaluator(ctx.truth, ctx.profile, dict(ctx.signs), ctx.truth.points[0],
                                Binding((), ())).eval(rhs)[0, 0])
    except Exception:  # noqa: BLE001 - not a number after all: judged as any other claim
        return None
    want = float(getattr(opt, field))
    if abs(value - want) <= 1e-5 * max(abs(value), abs(want)):  # relative: epsilon = 1e-8 is not 1e-6
        return Verdict(claim.text, "correct", method="exact", checked=1,
                       note=f"the {opt.name} optimizer's {field.replace('_', ' ')} in the spec is {want:g}")
    return Verdict(claim.text, "incorrect", diagnosis=f"the spec's {field.replace('_', ' ')} is {want:g}, "
                   f"not {value:g}", expected=f"{claim.text.split('=')[0].strip()} = {want:g}", method="exact",
                   checked=1)


def _optimizer_state(claim: Claim, ctx: Context) -> bool:
    """``v_{W^{(1)}}``, ``\\hat{m}_{b^{(2)}}``: a letter subscripted by a parameter (momentum's
    velocity, Adam's moments)."""
    return any(isinstance(n, Sym) and n.index and kind_of(n, ctx.profile) in ("free", "batch")
               and any(isinstance(i, Sym) and kind_of(i, ctx.profile) in ("weight", "bias") for i in n.index)
               for side in claim.sides for n in walk(side))


def _function_variable(claim: Claim) -> Claim:
    """``\\sigma(x) = 1/(1 + e^{-x})``: the argument of a function being defined is a free
    variable, not the network's input x."""
    from .diagnose import rebuild

    lhs = claim.sides[0]
    if not (isinstance(lhs, Call) and len(lhs.args) == 1 and isinstance(lhs.args[0], Sym)
            and lhs.args[0].layer is None and lhs.args[0].index is None and not lhs.args[0].hat
            and lhs.func in GENERIC_ACTIVATIONS | {"sigmoid", "tanh", "relu"}):
        return claim
    var = lhs.args[0]

    def fn(n):
        return Sym("u") if n == var else None
    return replace(claim, sides=tuple(rebuild(s, fn) for s in claim.sides))


def _per_example_loss(claim: Claim, ctx: Context) -> tuple[Claim, bool]:
    """``E_n``, ``L_i``: the loss of one example is the loss (noted); True when the claim
    sums over the examples (an index of the loss, or a sum up to m)."""
    from .diagnose import rebuild

    nodes = [n for side in claim.sides for n in walk(side)]
    letters = {i.name for n in nodes if isinstance(n, Sym) and n.index and kind_of(n, ctx.profile) == "loss"
               for i in n.index if isinstance(i, Idx)}
    sums = [n for n in nodes if isinstance(n, SumOver)]
    if any(s.var in letters for s in sums):
        return claim, True
    if not letters:
        return claim, False

    def fn(n):
        if isinstance(n, Sym) and n.index and kind_of(n, ctx.profile) == "loss":
            return replace(n, index=None)
        return None
    ctx.notes.add("read the indexed loss as the loss of one example")
    return replace(claim, sides=tuple(rebuild(s, fn) for s in claim.sides)), False


def _substitute(claim: Claim, ctx: Context, keep_lhs: bool = False) -> Claim:
    """Earlier algorithm variables replaced by what they were assigned."""
    from .diagnose import rebuild

    def fn(n):
        if isinstance(n, Sym) and n.name in ctx.defs and n.layer is None and n.index is None and not n.hat:
            return Paren(ctx.defs[n.name])
        return None
    return replace(claim, sides=tuple(s if keep_lhs and i == 0 else rebuild(s, fn) for i, s in enumerate(claim.sides)))


def _reading_notes(claim: Claim, ctx: Context) -> None:
    """Notes on how ambiguous notation was read."""
    nodes = [n for side in claim.sides for n in walk(side)]
    if any(isinstance(n, Deriv) and n.spelled == "delta" for n in nodes):
        ctx.notes.add(r"read \frac{\delta E}{\delta w} as a partial derivative (\partial)")
    for name in sorted({n.name for n in nodes if isinstance(n, Sym) and n.name in GRADIENT_NAMES}):
        base = GRADIENT_NAMES[name]
        ctx.notes.add(f"read {name} as the gradient \\partial {plain_name(ctx.profile.loss)}/\\partial {base} "
                      f"(Ng's notation), not d times {base}")
    if ctx.truth.batch_mode:
        ctx.notes.add(f"read as Ng's batch notation: one column per example (checked with m = {ctx.truth.BATCH}), "
                      "dW and db the gradients of the mean loss J")
    for n in nodes:
        if isinstance(n, Sym) and n.name in STEP_NAMES:
            ctx.notes.add(f"read \\Delta {STEP_NAMES[n.name]} as the update amount "
                          f"-{ctx.profile.learning_rate} \\partial {plain_name(ctx.profile.loss)}/\\partial "
                          f"{STEP_NAMES[n.name]}")
    if any(isinstance(n, Sym) and n.name in SCORE_NAMES and kind_of(n, ctx.profile) != "free" for n in nodes):
        ctx.notes.add("read f_k as the output layer's scores and p_k as its probabilities (CS231n)")
    if any(isinstance(n, Sym) and n.name == "Err" for n in nodes):
        ctx.notes.add("read Err_k as the output error (target minus output), as AIMA does")


def _layer_reading(claim: Claim, ctx: Context, verdict: Verdict) -> Verdict:
    """Letter indices with no layer written: a claim that holds for the output units, the first
    layer or the hidden units only is read as being about those (Wikipedia: "if the neuron is in
    the output layer, then o_j = y"), and the note says so."""
    syms = [n for side in claim.sides for n in walk(side) if isinstance(n, Sym)]
    remark = " ".join(claim.notes).lower()
    if any(s.layer is not None for s in syms) or re.search(r"output|first|hidden|inner", remark):
        return verdict
    if not any(s.index for s in syms):
        return verdict
    about_output = any(kind_of(s, ctx.profile) in ("output", "target") for s in syms)
    readings = [("output layer", "output units"), ("hidden layer", "hidden units"),
                ("first layer", "units of the first layer"), ("input layer", "input units")]
    if about_output:
        readings = readings[:1]
    for remark_text, words in readings:
        restricted = Claim(claim.text, claim.sides, claim.relations, claim.notes + (remark_text,))
        saved = set(ctx.notes)
        again = check_claim(restricted, ctx)
        if again.verdict == "correct":
            ctx.notes.add(f"read the unit indices as {words}: the claim holds for those only")
            return again
        ctx.notes = saved
    return verdict


def _each_activation(claim: Claim, ctx: Context, verdict: Verdict) -> Verdict:
    """A generic function with no layer to go by, on a network with several activations: the
    identity is checked for each layer's activation; it holds if it holds for one of them."""
    last = verdict
    for layer, act in enumerate((layer.activation for layer in ctx.truth.net.layers), 1):
        ctx.truth.forced = act
        try:
            again = check_claim(claim, ctx)
        finally:
            ctx.truth.forced = None
        if again.verdict == "correct":
            ctx.notes.add(f"the function is read as layer {layer}'s activation ({act.name}), for which "
                          "the identity holds")
            return again
        if again.verdict == "incorrect":
            last = again
    return last


def _generic_definition(claim: Claim, ctx: Context, verdict: Verdict) -> Verdict:
    """``\\varphi(z) = 1/(1+e^{-z})`` defines the generic activation: skipped when it names a
    standard function that the network does not use."""
    lhs = claim.sides[0]
    if len(claim.sides) != 2 or not isinstance(lhs, Call) or lhs.func not in GENERIC_ACTIVATIONS \
            or lhs.primes or len(lhs.args) != 1 or not isinstance(lhs.args[0], Sym) or lhs.layer is not None:
        return verdict  # \varphi_{1}(u) = ...: the layer is written, so that layer's activation is meant
    var = lhs.args[0]
    if var.layer is not None or var.index is not None:
        return verdict
    from ..registry import ops
    point = ctx.truth.points[0]
    for name in STANDARD_FUNCTIONS:
        act = ops.activation(name)
        f = ctx.truth.elementwise(act, 0)
        ok = True
        for v in (-1.3, -0.4, 0.2, 0.7, 1.9):
            ev = Evaluator(ctx.truth, ctx.profile, dict(ctx.signs), point, Binding((), ()),
                           overrides={("free", var.name): v})
            try:
                right = ev.eval(claim.sides[1])
            except Exception:  # noqa: BLE001 - any failure means "not this function"
                ok = False
                break
            if not close(np.asarray(f(np.array([[v]])), dtype=float).reshape(1, 1), right):
                ok = False
                break
        if ok:
            layers = [i for i, layer in enumerate(ctx.truth.net.layers, 1) if layer.activation.name == name]
            if layers:
                return Verdict(claim.text, "correct", method=verdict.method or "numeric", checked=5,
                               note=f"{lhs.func} defined as the {name}, the activation of layer "
                                    f"{', '.join(map(str, layers))}")
            used = ", ".join(sorted({layer.activation.name for layer in ctx.truth.net.layers}))
            return _skipped(claim.text, f"defines {lhs.func} as the {name}, which this network does not use "
                                        f"(its activations: {used}); a definition, not a claim about the network")
    return verdict
