"""initstudy: the library behind the book "Does this init claim actually hold?".

Modules, one concept each: :mod:`~initstudy.inits` (initialisers), :mod:`~initstudy.data`
(data sets), :mod:`~initstudy.models`, :mod:`~initstudy.train`, :mod:`~initstudy.probes`
(activation and gradient statistics), :mod:`~initstudy.symmetry` (the zero-init measures),
:mod:`~initstudy.results` (atomic tables, provenance), :mod:`~initstudy.claims` (the
ledger and verdicts), :mod:`~initstudy.figures`, :mod:`~initstudy.catalog` (notebooks and
their parameters), :mod:`~initstudy.study` (one notebook run), :mod:`~initstudy.runner`
and :mod:`~initstudy.book` (the command line).
"""

__version__ = "0.1.0"
