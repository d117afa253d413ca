"""The study machinery: parameter declarations, the claims engine, results, figures, the
notebooks' Run, the layout of results, the execution core and the run and sweep commands."""
