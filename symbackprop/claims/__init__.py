"""Check hand derivations: parse claims (never evaluated as code) and judge them against a Derivation.

The claim language is the LaTeX people write (one claim per line, or the lines of
an ``align`` environment; ``&``, ``\\\\``, ``\\nonumber``, ``\\quad`` ignored) plus a
plain form (``dE/dW2[1,1] = delta2[1]*a1[1]``):

* gradients ``\\frac{\\partial E}{\\partial W^{(1)}_{12}}`` (E, L or C; ``\\delta`` or
  ``d`` for the partial sign too), free indices ``w_{ij}`` checked at every valid
  value, layer letters ``W^{(l)}``, ``\\delta^{(l+1)}``, ``L`` for the last layer;
* definitions of delta (``\\delta``, ``\\Delta``): checked, and their sign convention
  is then required of later claims; update rules ``w \\leftarrow w + ...``;
* matrices ``W^{(2)}``, ``a^{(1)T}``, ``(W^{(2)})^\\top``, ``\\odot``, with shapes checked;
* sigma, g, f, phi (and primes) are the activation of their argument's layer;
  ``\\sum_k``, ``\\sum_{k=1}^{n}``, ``\\frac``, ``\\tfrac12``, ``\\exp``, ``\\log``, ``\\hat y``;
* a remark ``\\text{(output layer)}``, ``(first layer)`` or ``(hidden layer)``
  restricts free indices to those layers.
"""

from .checker import METHOD, Verdict, check
from .lexer import ClaimSyntaxError

__all__ = ["METHOD", "ClaimSyntaxError", "Verdict", "check"]
