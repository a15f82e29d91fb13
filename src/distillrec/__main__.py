"""`python -m distillrec ...` runs the command line, as `distillrec ...` does."""

from distillrec.cli import main

main()
