"""``python -m cfer``: the ``cfer`` command line."""

from cfer.experiments.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
