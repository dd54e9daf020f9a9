"""Lazy package namespaces: names imported on first use.

``import xcube`` (and every ``xcube`` command) must stay cheap, so a package
lists its public names with the module that defines each, and
:func:`namespace` returns the module-level ``__getattr__`` and ``__dir__``
that import that module when a name is first asked for (PEP 562).
"""
from __future__ import annotations

import copyreg
import importlib
import sys
import types

__all__ = ["namespace", "keep_functions", "FunctionsFirstPackage", "after_import"]


def namespace(package: str, names: dict, submodules=(), extra=()):
    """``(__getattr__, __dir__)`` for ``package``: ``names`` maps a public
    name to ``"module"`` (relative to the package, ``"..pkg.module"`` for a
    sibling; the name defined there) or ``"module:attr"``; ``submodules`` are
    importable on attribute access;
    ``extra`` are names ``__dir__`` lists besides these. Eager (builds two
    closures; the returned ``__getattr__`` imports lazily, on first access)."""

    def __getattr__(name):
        if name in names:
            module, _, attr = names[name].partition(":")
            value = getattr(importlib.import_module(module if module.startswith(".") else f".{module}", package),
                            attr or name)
        elif name in submodules:
            value = importlib.import_module(f".{name}", package)
        else:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return value

    def __dir__():
        return sorted(set(names) | set(submodules) | set(extra))

    return __getattr__, __dir__


class FunctionsFirstPackage(types.ModuleType):
    """A package whose public functions keep their names when a submodule of
    the same name is imported (see :func:`keep_functions`)."""

    def __setattr__(self, name, value):
        if isinstance(value, types.ModuleType) and name in self.__dict__.get("__xcube_functions__", ()):
            value = getattr(value, name)
        super().__setattr__(name, value)


def _reduce_package(module):
    return importlib.import_module, (module.__name__,)


copyreg.pickle(FunctionsFirstPackage, _reduce_package)  # pickled by name, like any module


def keep_functions(package: str, names: dict) -> None:
    """Keep ``package.<name>`` the function when a public function has the
    name of its own submodule (``xcube.select`` the function, defined in
    ``xcube/select.py``): importing the submodule would otherwise replace the
    package attribute with the module. Eager; imports nothing."""
    module = sys.modules[package]
    module.__xcube_functions__ = frozenset(n for n, m in names.items() if m.partition(":")[0] == n)
    module.__class__ = FunctionsFirstPackage


def after_import(name: str, then: str) -> None:
    """Import the module ``then`` as soon as the top-level module ``name`` is
    imported: now when it already is, otherwise right after its first import
    (a one-shot finder on ``sys.meta_path`` that wraps ``name``'s loader; it
    imports nothing itself). ``xcube`` uses it to register the ``.xcube``
    accessor whenever xarray gets imported, without importing xarray. Eager
    when ``name`` is imported already, else deferred to its import."""
    if name in sys.modules:
        importlib.import_module(then)
        return
    sys.meta_path.insert(0, _AfterImport(name, then))


class _AfterImport:
    """Meta-path finder of :func:`after_import`: finds ``name`` with the other
    finders, and gives its spec a loader that imports ``then`` after
    executing ``name``; removes itself on first use."""

    def __init__(self, name: str, then: str):
        self.name, self.then = name, then

    def find_spec(self, fullname, path=None, target=None):
        if fullname != self.name:
            return None
        try:
            sys.meta_path.remove(self)
        except ValueError:  # (another thread took it)
            return None
        for finder in sys.meta_path:
            find = getattr(finder, "find_spec", None)
            spec = find(fullname, path, target) if find is not None else None
            if spec is not None:
                if spec.loader is not None and hasattr(spec.loader, "exec_module"):
                    spec.loader = _ThenLoader(spec.loader, self.then)
                return spec
        return None


class _ThenLoader:
    """A loader that delegates to ``loader`` and imports ``then`` once the
    module is executed (other attributes: those of ``loader``)."""

    def __init__(self, loader, then: str):
        self._loader, self._then = loader, then

    def __getattr__(self, attr):
        return getattr(self._loader, attr)

    def create_module(self, spec):
        return self._loader.create_module(spec)

    def exec_module(self, module):
        self._loader.exec_module(module)
        module.__loader__ = module.__spec__.loader = self._loader  # (as if never wrapped: reload, resources)
        importlib.import_module(self._then)
