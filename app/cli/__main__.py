"""`python -m app.cli`: the `gridline` command."""

from app.cli.main import main

main()
