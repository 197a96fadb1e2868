"""The asset layer, below RQ1, RQ3 and the case study: the zoo and the assets around it (CONTRIBUTING.md, Layout)."""
