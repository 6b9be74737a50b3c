"""Check hand derivations: parse claims (never evaluated as code) and judge them against a Derivation.

One claim text in, one verdict out: :func:`symbackprop.claims.judge.judge` (``correct``,
``incorrect`` with a diagnosis, a counterexample and a fix, ``skipped`` for a formula that
says nothing checkable, ``cannot-check`` with the reason); :func:`check` runs it over lines.

The claim language is the LaTeX (or Unicode) people write:

* gradients ``\\frac{\\partial E}{\\partial W^{(1)}_{12}}``, ``\\partial L/\\partial W``,
  ``\\nabla_a C``, Ng's ``dW^{[2]}``, ``dz`` (never d times z), ``\\Delta w_{ij}`` (an update
  amount); ``\\delta`` or ``d`` for the partial sign (noted); loss names E, L, C, J,
  ``\\ell``, ``\\mathcal{L}`` and the spec's own (``Loss``); ``E_n`` is one example's loss;
* layers ``W^{(2)}``, ``W^{[2]}``, letters ``w^{l+1}``, ``\\delta^l`` (checked for every layer
  they can stand for), ``L`` the last layer; letter indices with no layer are read as the
  output, hidden or first layer when the claim holds for those only (noted);
* ``\\odot`` binds loosest: juxtaposition, ``\\cdot`` and ``\\times`` are matrix products where
  the shapes need one, elementwise where only that fits (noted: write ``\\odot``);
* ``\\sigma``, ``\\tanh``, ``\\operatorname{ReLU}`` name their function; sigma is the layer's
  own activation only in a profile that writes sigma for any activation (seed), with a note
  when that is not the sigmoid; f, g, h, phi (primes, ``g^{[1]\\prime}``) are the layer's;
* Ng's batch notation (Z, A, X, Y, dZ, 1/m) is checked with several examples at once;
* definitions ``=``, ``\\equiv``, ``:=``, ``\\triangleq``; updates ``\\leftarrow``,
  ``\\rightarrow``, or ``=`` with the same parameter on both sides;
* for a spec with layer kinds (:mod:`.layers`): the batch-normalization paper's notation
  (``\\mu_\\mathcal{B}``, ``\\sigma_\\mathcal{B}^2``, ``\\widehat{x}_i``, ``y_i``, ``\\gamma``,
  ``\\beta``, ``\\epsilon``, ``m``, ``\\sqrt``, ``\\bigg(``), layer normalization (the same
  symbols over the units of a sample), inverted dropout (mask ``m_i`` or ``r_i``, rate ``p``)
  and weight decay (``\\lambda``, ``E_0`` the loss without it), judged against SymPy
  derivatives of the registry's forward at sizes 3 and 4 (:mod:`.scenes`); and the graph
  documents' notation for the whole network (:mod:`.graphclaims`: ``a^{(l)}_{ij}``, ``z^{(l)}_{ij}``,
  ``\\delta^{(l)}_{ij}``, ``g^{(l)}_{ij}``, ``g^{(l \\leftarrow c)}_{ij}``, ``W^{(l)}_{jk}``, ``\\gamma^{(l)}_j``,
  ``\\mu_{B,j}``, ``\\hat{x}_{ij}``, ``\\hat{\\sigma}_j``, matrix forms), judged on the spec's network at
  batch sizes 3 and 4 against the engine's forward and gradients and finite differences; ``B = 8``,
  ``\\lambda = ...``, ``\\alpha = ...``, ``\\epsilon = ...``, ``p = ...`` against the spec's values;
* delta's sign is the profile's (aima's Delta is -dE/dz): a definition with the other sign
  is diagnosed, never adopted, and no claim's verdict depends on an earlier one, except
  an algorithm's running variable (``g \\leftarrow \\nabla_{\\hat y} J``) used later.
"""

from .checker import METHOD, Verdict, check
from .lexer import ClaimSyntaxError

__all__ = ["METHOD", "ClaimSyntaxError", "Verdict", "check"]
