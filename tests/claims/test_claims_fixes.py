"""Every fix the checker suggests for a wrong claim is itself checked (issue 14, item 3).

For each wrong claim of tests/claims/test_claims.py and each ``expect: incorrect`` entry of the corpus
(tests/data/claims_corpus/), the checker's suggested ``expected`` formula is fed back to the checker in the
same notation (same profile, same preceding lines) and must be judged "correct", and it must read as a
person writes it: no doubled signs (``--``, ``- -``, ``+ -``, ``+ +``).

The truth here is the checker's own judgement of its own fix: the two can only agree if the fix is right or
both are wrong in the same way; test_claims.py and test_claims_corpus.py check the verdicts themselves
against finite differences.  Entries where today's checker fails are xfail(strict=True), so the mark must go
when the checker improves.
"""

from __future__ import annotations

import importlib.util
import re
import sys
from functools import cache
from pathlib import Path

import pytest

from symbackprop import check, derive
from symbackprop.claims.judge import judge, new_context

ROOT = Path(__file__).resolve().parents[2]


def _load(name: str, path: Path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault(name, module)
    spec.loader.exec_module(module)
    return module


claims_tests = _load("claims_tests_for_fixes", ROOT / "tests" / "claims" / "test_claims.py")
corpus = _load("claims_corpus_for_fixes", ROOT / "benchmarks" / "claims_corpus.py")

DOUBLED_SIGN = re.compile(r"-\s*-|\+\s*-|\+\s*\+|-\s*\+")
CANCELLING = re.compile(r"[+-]\s*(\d+)\s*[+-]\s*\1(?!\d)")  # l + 1 - 1: an offset that cancels
LONE_PARENS = re.compile(r"\\left\(\s*[A-Za-z](\^\{\([^{}]*\)\})?(_\{[^{}]*\})?\s*\\right\)(?![\^'_])")
"""(W^{(1)}) x: parentheses around one symbol with nothing (a power, prime, transpose) after them."""


def unreadable(formula: str) -> str | None:
    """The doubled sign, cancelling offset or lone parentheses in a formula, or None when it reads as a person
    writes it."""
    m = DOUBLED_SIGN.search(formula) or CANCELLING.search(formula) or LONE_PARENS.search(formula)
    return m.group(0) if m else None


def test_unreadable_catches_doubled_signs():
    assert unreadable(r"= --\delta^{(2)}_{1} a^{(1)}_{1}") == "--"
    assert unreadable(r"a + -b") == "+ -"
    assert unreadable(r"W - \alpha \delta x") is None
    assert unreadable(r"\left(1 - a\right) - b") is None
    assert unreadable(r"\delta^{(l + 1 - 1)}_{j}") == "+ 1 - 1"
    assert unreadable(r"a^{(l - 1)}_{k} + 1 - 12") is None
    assert unreadable(r"z^{(1)} = \left(W^{(1)}\right) x") == r"\left(W^{(1)}\right)"
    assert unreadable(r"\left(W^{(2)}\right)^T \delta^{(2)}") is None
    assert unreadable(r"\left(a^{(2)}_{1} - y_{1}\right)^{2}") is None


@cache
def derivation(key: str):
    return derive(key, verify=False)


# ----------------------------------------------------------------------------- the suite's wrong claims

EXTRA_WRONG = [  # the other wrong claims of tests/claims/test_claims.py (spec, notation, text)
    (claims_tests.SEED, "seed", r"\frac{\partial E}{\partial W^{(1)}_{12}} = \delta^{(1)}_1 x_1 x_2"),
    (claims_tests.CLASSIFIER, "seed", r"\delta^{(1)}_j = \sigma'(z^{(1)}_j) \sum_k W^{(2)}_{jk}\delta^{(2)}_k"),
    (claims_tests.CLASSIFIER, "seed", r"\delta^{(1)}_j = \sigma'(z^{(2)}_j) \sum_k W^{(2)}_{kj}\delta^{(2)}_k"),
    (claims_tests.CLASSIFIER, "seed", r"\frac{\partial E}{\partial W^{(l)}_{jk}} = \delta^{(l)}_k a^{(l-1)}_j"),
    (claims_tests.SEED, "aima", (claims_tests.CLAIMS / "monash_aima.tex").read_text()),
    (claims_tests.SEED, "seed", r"E = (a^{(2)}_1 - y_1)^2"),  # the fix keeps a power: rebuilt, not dropped
]
EXTRA_WRONG += [  # a transpose too many (the fix removes it); a general layer one too high
    (claims_tests.SEED, "seed", r"z^{(1)} = (W^{(1)})^T x + b^{(1)}"),
    (claims_tests.CLASSIFIER, "seed", r"z^{(2)} = (W^{(2)})^T a^{(1)} + b^{(2)}"),
    (claims_tests.SEED, "seed", r"\frac{\partial E}{\partial W^{(l)}_{jk}} = \delta^{(l+1)}_j a^{(l-1)}_k"),
]
SUITE_WRONG = [(spec, notation, text) for spec, notation, text, _ in claims_tests.WRONG] + EXTRA_WRONG
IDS = [f"wrong{i}" for i in range(len(SUITE_WRONG))]
UNREADABLE_TODAY: dict[int, str] = {}  # index in SUITE_WRONG -> how the fix reads today (none left: the printer
# adds up layer offsets, so the general-layer fix reads \delta^{(l)}_{j}, not \delta^{(l + 1 - 1)}_{j})


@cache
def _fix(spec, notation, text):
    d = derivation(spec)
    wrong = check(spec, text, notation=notation, derivation=d)[-1]
    assert wrong.verdict == "incorrect" and wrong.expected, wrong.as_dict()
    before = text.rstrip("\n").split("\n")[:-1]
    fixed = check(spec, "\n".join(before + [wrong.expected]), notation=notation, derivation=d)[-1]
    return wrong.expected, fixed


@pytest.mark.parametrize("spec, notation, text", SUITE_WRONG, ids=IDS)
def test_fix_of_a_wrong_claim_in_the_suite_is_correct(spec, notation, text):
    expected, fixed = _fix(spec, notation, text)
    assert fixed.verdict == "correct", (expected, fixed.as_dict())


@pytest.mark.parametrize("spec, notation, text", [
    pytest.param(*case, id=IDS[i], marks=[pytest.mark.xfail(strict=True, reason=UNREADABLE_TODAY[i])]
                 if i in UNREADABLE_TODAY else []) for i, case in enumerate(SUITE_WRONG)])
def test_fix_of_a_wrong_claim_in_the_suite_reads_as_written(spec, notation, text):
    expected, _ = _fix(spec, notation, text)
    assert unreadable(expected) is None, expected


# ----------------------------------------------------------------------------- the corpus

# Entries whose suggested fix today's checker does not judge correct (or does not read as written).
KNOWN_BAD_FIXES: dict[str, str] = {}  # the four earlier entries (aima-16, aima-25, wikipedia-16, -23) now pass


def _corpus_cases():
    cases = []
    for data in corpus.load():
        for i, entry in enumerate(data["entries"]):
            if entry["expect"] != "incorrect":
                continue
            key = f"{data['family']}-{i}"
            marks = [pytest.mark.xfail(strict=True, reason=KNOWN_BAD_FIXES[key])] if key in KNOWN_BAD_FIXES else []
            cases.append(pytest.param(data, entry["claim"], id=key, marks=marks))
    return cases


@cache
def corpus_derivation(family: str, network: str):
    import yaml

    return derive(yaml.safe_load(network), verify=False)


@pytest.mark.parametrize("data, claim", _corpus_cases())
def test_fix_of_a_wrong_corpus_claim_is_correct_and_readable(data, claim):
    import yaml

    d = corpus_derivation(data["family"], yaml.safe_dump(data["network"]))
    try:
        wrong = judge(claim, new_context(d, data["profile"]))
    except Exception as exc:  # noqa: BLE001 -- an unknown profile or a reader crash: reported by test_claims_corpus
        pytest.skip(f"the checker cannot judge this entry ({type(exc).__name__}: {exc})")
    if wrong.verdict != "incorrect" or not wrong.expected:
        pytest.skip(f"no fix suggested (verdict {wrong.verdict})")
    fixed = judge(wrong.expected, new_context(d, data["profile"]))
    assert fixed.verdict == "correct", (wrong.expected, fixed.as_dict())
    assert unreadable(wrong.expected) is None, wrong.expected


def test_factor_fix_keeps_the_true_coefficient():
    """Under SSE dE/da = 2 (a - y): a claim of 4 (a - y) is fixed to 2 (a - y), not to (a - y)."""
    spec = {"inputs": 1, "layers": [{"units": 1, "activation": "sigmoid"}], "loss": "sse"}
    d = derive(spec, verify=False)
    wrong = check(spec, r"\frac{\partial E}{\partial a^{(1)}_1} = 4(a^{(1)}_1 - y_1)", notation="seed",
                  derivation=d)[-1]
    assert wrong.verdict == "incorrect" and "constant factor" in wrong.diagnosis, wrong.as_dict()
    assert check(spec, wrong.expected, notation="seed", derivation=d)[-1].verdict == "correct", wrong.expected
    assert unreadable(wrong.expected) is None
