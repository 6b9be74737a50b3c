"""The renderers: documents (:mod:`.documents`) printed as LaTeX (:mod:`.latex`) and Markdown
(:mod:`.markdown`), the network diagram (:mod:`.tikz`, :mod:`.svg`), the text report (:mod:`.textreport`),
the notation profiles (:mod:`.notation`) and the notebook display (:mod:`.notebook`).  They read the engine;
the engine never imports them."""
