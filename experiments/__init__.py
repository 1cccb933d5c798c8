"""Configs, the ``cfer`` command line, one module per phase of ``cfer run`` (on a shared
run context), their reports and plots."""
