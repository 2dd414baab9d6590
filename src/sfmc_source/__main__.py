"""``python -m sfmc_source`` runs the command line."""

from sfmc_source.cli import main

main(prog_name="sfmc-source")
