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
from .codegen import code_names, code_outputs, code_precheck
from .engine.derive import Derivation, derive
from .engine.verify import MODES
from .errors import SymbackpropError
from .output import check_folder, stale_outputs, write_outputs
from .progress import Stages
from .render.documents import check_tex_engine, document_names, document_outputs
from .render.notation import PROFILE_NAMES
from .render.textreport import gradients_json, gradients_text, headline
from .spec import SEED_SPEC, load

OutputWriter = Callable[[Derivation, argparse.Namespace], dict[str, bytes]]


@dataclass(frozen=True)
class Output:
    """One writer of ``derive -o DIR``: the files it may write, a check before any work, the writer."""

    label: str
    names: Callable[[argparse.Namespace], tuple[str, ...]]
    write: OutputWriter
    precheck: Callable[[argparse.Namespace], None] = lambda args: None


DERIVE_OUTPUTS: list[Output] = [
    Output("code", code_names, code_outputs, code_precheck),  # model.py and test_model.py (--target numpy|scalar), model_xp.py (array-api)
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
    d.add_argument("--target", choices=("numpy", "scalar", "array-api"), default="numpy",
                   help="generated code: vectorized matrix form (numpy: model.py), per-weight formulas (scalar: "
                   "model.py) or the Array API form for NumPy, CuPy, PyTorch, JAX, Dask (array-api: model_xp.py)")
    d.set_defaults(run=_cmd_derive)

    g = sub.add_parser("gradients", help="pretty-print every dE/dw in the terminal")
    g.add_argument("spec", help="YAML/TOML/JSON spec")
    g.add_argument("--plain", action="store_true", help="one line per formula instead of 2-D layout")
    g.set_defaults(run=_cmd_gradients)

    c = sub.add_parser("check", help="check the formulas of notes (Markdown, LaTeX, Jupyter): exit 0 all correct, "
                       "1 any incorrect, 2 unreadable input")
    c.add_argument("paths", nargs="*", metavar="[SPEC] NOTES",
                   help="optional YAML/TOML/JSON spec of the network, then the notes (.md, .txt, .tex, .ipynb, "
                        "or - for standard input); without a spec the network is read from the notes' forward pass")
    c.add_argument("--claim", help="one claim given on the command line, e.g. 'dE/dW2[1,1] = delta2[1]*a1[1]' "
                   "(needs a SPEC)")
    c.add_argument("--notation", choices=("auto",) + PROFILE_NAMES, help="notation of the claims (default for notes: "
                   "auto, a profile per section from the symbols used; for --claim: the spec's profile, else seed)")
    c.add_argument("--json", action="store_true", help="verdicts as JSON: line, claim, verdict, note, diagnosis, "
                   "counterexample, expected")
    c.add_argument("--strict", action="store_true", help="also exit 2 when a formula cannot be checked")
    c.add_argument("--annotate", metavar="OUT", help="write a copy of the notes with a mark after each formula")
    c.add_argument("--force", action="store_true", help="let --annotate overwrite an existing OUT")
    c.set_defaults(run=_cmd_check)
    return parser


def _cmd_derive(args: argparse.Namespace) -> int:
    network = load(args.spec if args.spec else SEED_SPEC)  # refuse a bad spec, folder or TeX before any work
    args.network = network  # the prechecks of the outputs read it
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
                     "gradients.txt": gradients_text(d, per_weight=args.per_weight, notation=args.notation).encode()}
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


SPEC_SUFFIXES = (".yaml", ".yml", ".toml", ".json")


def _cmd_check(args: argparse.Namespace) -> int:
    paths = list(args.paths)
    if len(paths) > 2:
        raise SymbackpropError(f"give at most a spec and a notes file, not {len(paths)} paths")
    if args.claim is not None:
        if len(paths) != 1:
            raise SymbackpropError("--claim needs exactly one SPEC and no notes file: symbackprop check SPEC --claim '...'")
        return _check_one_claim(paths[0], args)
    if not paths:
        raise SymbackpropError("give the notes to check: symbackprop check [SPEC] NOTES")
    if len(paths) == 1 and paths[0].lower().endswith(SPEC_SUFFIXES):
        raise SymbackpropError(f"{paths[0]} looks like a spec; give the notes after it (symbackprop check "
                               f"{paths[0]} NOTES) or a claim with --claim")
    spec = paths[0] if len(paths) == 2 else None
    return _check_notes(spec, paths[-1], args)


def _check_one_claim(spec: str, args: argparse.Namespace) -> int:
    from .claims import check
    from .claims.report import verdicts_json, verdicts_text

    notation = None if args.notation == "auto" else args.notation
    verdicts = check(spec, args.claim, notation=notation)
    if not verdicts:
        raise SymbackpropError("no claim in --claim; write one formula, e.g. 'dE/dW2[1,1] = delta2[1]*a1[1]'")
    sys.stdout.write(verdicts_json(verdicts) if args.json else verdicts_text(verdicts))
    if any(v.verdict == "incorrect" for v in verdicts):
        return 1
    return 0 if all(v.correct for v in verdicts) else 2  # a claim given on the command line must be readable


def _check_notes(spec: str | None, path: str, args: argparse.Namespace) -> int:
    from .claims.annotate import check_target, write_annotated
    from .claims.infer import Option, narrow_by_definitions, network_options, read_architecture
    from .claims.notes import auto_profile, check_notes, items
    from .claims.report import notes_json, notes_text
    from .claims.sources import read_notes
    from .render.notation import profile

    if args.annotate:
        check_target(path, args.annotate, force=args.force)  # refuse before any work
    notes = read_notes(path)
    if spec is not None:
        from .claims.layers import claim_target
        d = claim_target(spec)  # a Derivation, or the layers of a spec with layer kinds
        options = [[Option(d, (), "the spec")]]
        fallback = profile(None, d.network.notation).name
        network = f"network {d.network.architecture} from {spec}"
    else:
        texts = [i.text for i in items(notes) if not i.skip]
        arch = read_architecture(texts)
        notation = args.notation if args.notation not in (None, "auto") else auto_profile(texts, "seed")[0]
        options, defined = narrow_by_definitions(network_options(arch), texts, notation)
        fallback = "seed"
        widths = " and ".join("-".join(map(str, row[0].widths)) for row in options)
        network = f"{arch.describe}; judged at widths {widths}" + (
            f" and with {', '.join(o.choice for o in options[0])}" if len(options[0]) > 1 else "") + (
            f" ({defined})" if defined else "")
    progress = None
    if not args.json and sys.stderr.isatty():
        from tqdm import tqdm

        def progress(seq):
            return tqdm(seq, desc="checking", unit="claim", file=sys.stderr, delay=1.0, leave=False)
    checked, profiles = check_notes(notes, options, args.notation or "auto", fallback, progress)
    if not checked:
        print(f"symbackprop: no formulas found in {path}; write maths between $...$ or $$...$$ "
              "(LaTeX: equation, align, \\[ \\])", file=sys.stderr)
    sys.stdout.write(notes_json(checked) if args.json else notes_text(path, checked, profiles, network))
    if args.annotate:
        target = write_annotated(notes, checked, args.annotate, force=args.force)
        print(f"wrote {target}", file=sys.stderr)
    kinds = {c.verdict.verdict for c in checked}
    if args.strict and "cannot-check" in kinds:
        print("symbackprop: error: some formulas cannot be checked (--strict); see the report", file=sys.stderr)
        return 2
    return 1 if "incorrect" in kinds else 0


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
