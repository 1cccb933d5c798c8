"""One file per strategy: a factory registered with ``@register_strategy`` (see strategies.registry)."""
