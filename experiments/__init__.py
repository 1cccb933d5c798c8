"""Configs, the ``cfer`` command line, the runner, reports and plots."""
