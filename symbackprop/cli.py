"""The ``symbackprop`` command.

Bad input never shows a traceback: one line ``symbackprop: error: ...`` on
stderr naming what is wrong and the fix, and exit code 2.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from dataclasses import dataclass

from . import __version__
from .codegen import code_names, code_outputs
from .derive import Derivation, derive
from .documents import check_tex_engine, document_names, document_outputs
from .errors import SymbackpropError
from .notation import PROFILE_NAMES
from .output import check_folder, stale_outputs, write_outputs
from .progress import Stages
from .spec import SEED_SPEC, load
from .textreport import gradients_json, gradients_text, headline
from .verify import MODES

OutputWriter = Callable[[Derivation, argparse.Namespace], dict[str, bytes]]


@dataclass(frozen=True)
class Output:
    """One writer of ``derive -o DIR``: the files it may write, a check before any work, the writer."""

    label: str
    names: Callable[[argparse.Namespace], tuple[str, ...]]
    write: OutputWriter
    precheck: Callable[[argparse.Namespace], None] = lambda args: None


DERIVE_OUTPUTS: list[Output] = [
    Output("code", code_names, code_outputs),  # model.py and test_model.py (--target numpy|scalar)
    Output("documents", document_names, document_outputs, check_tex_engine),  # derivation.tex/.md/.pdf
]
"""Further outputs of ``derive -o DIR`` beside gradients.json and gradients.txt."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, exit 2, as for every other bad input
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="symbackprop", description="Derive, document, generate and check backpropagation.")
    parser.add_argument("--version", action="version", version=f"symbackprop {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    d = sub.add_parser("derive", help="derive every dE/dw and verify it; -o writes the outputs")
    d.add_argument("spec", nargs="?", help="YAML/TOML/JSON spec (default: the seeds' 2-3-1 sigmoid network)")
    d.add_argument("-o", "--output", metavar="DIR", help="write gradients.json, gradients.txt, ... into DIR")
    d.add_argument("--json", action="store_true", help="print gradients, steps and verification as JSON")
    d.add_argument("--force", action="store_true", help="overwrite files in DIR that symbackprop did not write")
    d.add_argument("--verify", choices=MODES, default="auto",
                   help="auto: symbolic checks of every layer, closed forms while small, numeric at any size; "
                   "full: every parameter in closed form (slow for deep nets); numeric; none")
    d.add_argument("--no-verify", dest="verify", action="store_const", const="none", help="same as --verify none")
    d.add_argument("--seed", type=int, default=0, help="random seed of the numeric verification")
    d.add_argument("--notation", choices=PROFILE_NAMES, help="notation profile of the documents "
                   "(default: the spec's notation.profile, else seed)")
    pdf = d.add_mutually_exclusive_group()
    pdf.add_argument("--pdf", dest="pdf", action="store_true", default=None,
                     help="require derivation.pdf (fails when no TeX engine is present)")
    pdf.add_argument("--no-pdf", dest="pdf", action="store_false", help="skip the PDF")
    d.add_argument("--per-weight", choices=("auto", "all"), default="auto",
                   help="auto: every parameter listed (documents, gradients.json/.txt) up to 64 parameters, "
                   "else one entry per layer; all: every parameter")
    d.add_argument("--target", choices=("numpy", "scalar"), default="numpy",
                   help="generated code: vectorized matrix form (numpy) or per-weight formulas (scalar)")
    d.set_defaults(run=_cmd_derive)

    g = sub.add_parser("gradients", help="pretty-print every dE/dw in the terminal")
    g.add_argument("spec", help="YAML/TOML/JSON spec")
    g.add_argument("--plain", action="store_true", help="one line per formula instead of 2-D layout")
    g.set_defaults(run=_cmd_gradients)

    c = sub.add_parser("check", help="check hand-derived formulas: exit 0 all correct, 1 any incorrect, 2 bad input")
    c.add_argument("spec", help="YAML/TOML/JSON spec of the network the claims are about")
    c.add_argument("claims", nargs="?", help="a .tex or .txt file, one claim per line or align lines")
    c.add_argument("--claim", help="one claim given on the command line, e.g. 'dE/dW2[1,1] = delta2[1]*a1[1]'")
    c.add_argument("--notation", choices=PROFILE_NAMES, help="notation of the claims "
                   "(default: the spec's notation.profile, else seed)")
    c.add_argument("--json", action="store_true", help="verdicts as JSON: claim, verdict, diagnosis, "
                   "counterexample, expected")
    c.set_defaults(run=_cmd_check)
    return parser


def _cmd_derive(args: argparse.Namespace) -> int:
    network = load(args.spec if args.spec else SEED_SPEC)  # refuse a bad spec, folder or TeX before any work
    outputs = DERIVE_OUTPUTS if args.output else []
    names = ["gradients.json", "gradients.txt"]
    for output in outputs:
        output.precheck(args)
        names.extend(output.names(args))
    if args.output:
        check_folder(args.output, names, force=args.force)
    pdf = "derivation.pdf" in names
    stages = (1 + {"none": 0, "numeric": 1, "auto": 3, "full": 4}[args.verify]
              + (len(outputs) + 2 + pdf if outputs else 0))
    with Stages(stages, enabled=None if not args.json else False) as stage:
        args.progress = stage
        stage("derive")
        d = derive(network, verify=args.verify, seed=args.seed, progress=stage)
        report = gradients_json(d, args.per_weight) if args.output or args.json else ""
        if args.output:
            stage("gradients.json, gradients.txt")
            files = {"gradients.json": report.encode(),
                     "gradients.txt": gradients_text(d, per_weight=args.per_weight).encode()}
            for output in outputs:
                stage(output.label)
                files.update(output.write(d, args))
            stage("write")
            stale = stale_outputs(args.output, files)
            written = write_outputs(args.output, files, force=args.force)
    out = sys.stderr if args.json else sys.stdout
    if args.json:
        sys.stdout.write(report)
    else:
        print(headline(d))
        print(d.verification.summary() if d.verification is not None else
              "verification skipped (--verify none): the results are unchecked")
    if args.output:
        print(f"wrote {', '.join(str(p) for p in written)}", file=out)
        if stale:
            print(f"removed {', '.join(stale)} (written by an earlier run, not produced by this one)", file=out)
    if d.verification is not None and not d.verification.passed:
        print("symbackprop: verification FAILED:\n  " + "\n  ".join(d.verification.failures[:20]), file=sys.stderr)
        return 1
    return 0


def _cmd_check(args: argparse.Namespace) -> int:
    from .claims import check
    from .claims.report import verdicts_json, verdicts_text

    if (args.claims is None) == (args.claim is None):
        raise SymbackpropError("give the claims either as a file (CLAIMS) or with --claim \"...\", not both")
    if args.claim is not None:
        text = args.claim
    else:
        try:
            with open(args.claims, encoding="utf-8") as handle:
                text = handle.read()
        except (OSError, UnicodeDecodeError) as exc:
            raise SymbackpropError(f"cannot read claims file {args.claims}: {exc}; give a .tex or .txt file") from None
    verdicts = check(args.spec, text, notation=args.notation)
    if not verdicts:
        raise SymbackpropError(f"no claims found in {args.claims or '--claim'}; write one formula per line")
    sys.stdout.write(verdicts_json(verdicts) if args.json else verdicts_text(verdicts))
    if any(v.verdict == "incorrect" for v in verdicts):
        return 1
    return 0 if all(v.correct for v in verdicts) else 2  # a claim that cannot be checked is bad input


def _cmd_gradients(args: argparse.Namespace) -> int:
    d = derive(args.spec, verify=False)
    sys.stdout.write(gradients_text(d, pretty=not args.plain))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.run(args)
    except SymbackpropError as exc:
        print(f"symbackprop: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("symbackprop: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
