"""Lazy package namespaces: names imported on first use.

``import xcube`` (and every ``xcube`` command) must stay cheap, so a package
lists its public names with the module that defines each, and
:func:`namespace` returns the module-level ``__getattr__`` and ``__dir__``
that import that module when a name is first asked for (PEP 562).
"""
from __future__ import annotations

import importlib

__all__ = ["namespace"]


def namespace(package: str, names: dict, submodules=(), extra=()):
    """``(__getattr__, __dir__)`` for ``package``: ``names`` maps a public
    name to ``"module"`` (relative to the package, the name defined there) or
    ``"module:attr"``; ``submodules`` are importable on attribute access;
    ``extra`` are names ``__dir__`` lists besides these."""

    def __getattr__(name):
        if name in names:
            module, _, attr = names[name].partition(":")
            value = getattr(importlib.import_module(f"{package}.{module}"), attr or name)
        elif name in submodules:
            value = importlib.import_module(f"{package}.{name}")
        else:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return value

    def __dir__():
        return sorted(set(names) | set(submodules) | set(extra))

    return __getattr__, __dir__
