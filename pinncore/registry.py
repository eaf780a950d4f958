"""Registries: one per extension point (optimizers, weighting schemes, library problems).

Each entry registers beside its definition with a self-description (timm's ``register_model``,
gymnasium's ``EnvSpec``): its name, the constructor, the constructor's parameters with the
defaults read from its signature and the bounds the entry declares, a one-line description
and role flags. Every front end — ``pc.train``'s phases, the command line's choices and help,
the web catalogue, sweeps' grid keys, the audit's shadow list, state restore and the contract
tests — reads the registry instead of restating it, so a new optimizer, scheme or problem is
one file plus its test.

Role flags (all optional booleans; a registry lists the flags it knows):

* optimizers: ``adapts_weights`` (the weighting scheme may change the weights during the
  phase), ``follows`` (may run as a later phase after another optimizer), ``second_order``;
* schemes: ``adapts`` (changes the weights during training), ``reports_weights`` (the
  weights it reports are its own state, not the user's λ);
* problems: ``exact`` (has an exact or reference solution), ``periodic``, ``inverse``.

>>> from pinncore.registry import Registry
>>> reg = Registry("widget", flags=("shiny",))
>>> @reg.register("box", description="A box.", bounds={"size": (0.0, None)}, shiny=True)
... def make_box(size=1.0, colour="red"):
...     return (size, colour)
>>> reg.create("box", size=2.0)
(2.0, 'red')
>>> reg["box"].params["size"].default, reg["box"].params["size"].bounds, reg["box"].flags["shiny"]
(1.0, (0.0, None), True)
>>> reg.names()
['box']
"""
from __future__ import annotations

import dataclasses
import inspect
import math
from typing import Any, Callable

__all__ = ["Param", "Spec", "Registry", "optimizers", "schemes", "problems"]

_EMPTY = inspect.Parameter.empty


@dataclasses.dataclass(frozen=True)
class Param:
    """One constructor parameter: ``default`` from the signature (``Param.REQUIRED`` if none);
    ``bounds`` an inclusive ``(lo, hi)`` pair (None: unbounded on that side) or a tuple of
    allowed ``choices``; ``kind`` "float", "int", "str", "bool" or "any" (from the default)."""

    name: str
    default: Any
    bounds: tuple | None = None
    choices: tuple | None = None
    kind: str = "any"
    help: str = ""

    REQUIRED = "<required>"

    def describe(self) -> dict:
        """A JSON-able description (infinite or NaN defaults become None)."""
        d = self.default
        if isinstance(d, float) and not math.isfinite(d):
            d = None
        elif not isinstance(d, (int, float, str, bool, type(None))):
            d = repr(d)
        return {"name": self.name, "default": d, "bounds": list(self.bounds) if self.bounds else None,
                "choices": list(self.choices) if self.choices else None, "kind": self.kind, "help": self.help}


def _kind(default) -> str:
    if isinstance(default, bool):
        return "bool"
    if isinstance(default, int):
        return "int"
    if isinstance(default, float):
        return "float"
    if isinstance(default, str):
        return "str"
    return "any"


def _params(factory, bounds: dict, help: dict | None = None) -> dict:
    target = factory.__init__ if inspect.isclass(factory) else factory
    out = {}
    for p in inspect.signature(target).parameters.values():
        if p.name == "self" or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            continue
        default = Param.REQUIRED if p.default is _EMPTY else p.default
        b = bounds.get(p.name)
        choices = tuple(b) if isinstance(b, (list, tuple)) and b and all(isinstance(v, str) for v in b) else None
        rng = tuple(b) if b is not None and choices is None else None
        out[p.name] = Param(p.name, default, rng, choices, _kind(default), (help or {}).get(p.name, ""))
    unknown = (set(bounds) | set(help or {})) - set(out)
    if unknown:
        raise ValueError(f"bounds name parameters {sorted(unknown)} that {factory!r} does not take")
    return out


@dataclasses.dataclass(frozen=True)
class Spec:
    """A registered entry: ``name``, ``factory`` (class or function), ``description`` (one line),
    ``params`` (name → Param), ``flags`` (role flags), ``aliases``."""

    name: str
    factory: Callable
    description: str
    params: dict
    flags: dict
    aliases: tuple = ()

    def create(self, **kw):
        """Build the entry with keyword arguments checked against ``params``."""
        unknown = set(kw) - set(self.params)
        if unknown:
            raise ValueError(f"{self.name}: unknown parameter(s) {sorted(unknown)}; it takes {sorted(self.params)}")
        return self.factory(**kw)

    def describe(self) -> dict:
        """A JSON-able description (what the web catalogue serves)."""
        return {"name": self.name, "description": self.description, "aliases": list(self.aliases),
                "params": [p.describe() for p in self.params.values()], "flags": dict(self.flags)}


class Registry:
    """Named entries of one kind. ``register`` (decorator) or ``add`` (call) puts one in;
    ``spec(name)`` / ``registry[name]``, ``create(name, **kw)``, ``names()``, ``specs()`` and
    ``describe()`` read it. Names are case-insensitive; ``-`` and ``_`` are ignored in lookups."""

    def __init__(self, kind: str, flags: tuple = ()):
        self.kind = kind
        self.known_flags = tuple(flags)
        self._specs: dict = {}
        self._keys: dict = {}

    @staticmethod
    def key(name) -> str:
        return name.lower().replace("-", "").replace("_", "") if isinstance(name, str) else ""

    def add(self, name: str, factory: Callable, *, description: str | None = None, bounds: dict | None = None,
            aliases: tuple = (), help: dict | None = None, **flags) -> Spec:
        """Register ``factory`` as ``name`` and return its Spec (``help``: parameter -> one-line
        help text, shown by the front ends)."""
        bad = set(flags) - set(self.known_flags)
        if bad:
            raise ValueError(f"{self.kind} registry: unknown flag(s) {sorted(bad)}; known: {list(self.known_flags)}")
        doc = description or (inspect.getdoc(factory) or name).strip().splitlines()[0]
        spec = Spec(name, factory, doc, _params(factory, bounds or {}, help),
                    {f: bool(flags.get(f, False)) for f in self.known_flags}, tuple(aliases))
        for k in (name, *aliases):
            key = self.key(k)
            if key in self._keys and self._keys[key] != name:
                raise ValueError(f"{self.kind} {k!r} is already registered (as {self._keys[key]!r})")
            self._keys[key] = name
        self._specs[name] = spec
        return spec

    def register(self, name: str, **kw):
        """Decorator form of ``add``: ``@registry.register("name", description=..., flag=True)``."""
        def deco(factory):
            self.add(name, factory, **kw)
            return factory
        return deco

    def __contains__(self, name) -> bool:
        return self.key(name) in self._keys

    def __getitem__(self, name) -> Spec:
        return self.spec(name)

    def __iter__(self):
        return iter(self.names())

    def __len__(self):
        return len(self._specs)

    def spec(self, name) -> Spec:
        """The Spec registered as ``name`` (or an alias); ValueError listing the names otherwise."""
        key = self.key(name)
        if key not in self._keys:
            raise ValueError(f"unknown {self.kind} {name!r}; choose one of {self.names()}")
        return self._specs[self._keys[key]]

    def create(self, name, **kw):
        return self.spec(name).create(**kw)

    def names(self, **flags) -> list:
        """Registered names in registration order, optionally only those whose flags match."""
        return [s.name for s in self._specs.values() if all(s.flags.get(f) == v for f, v in flags.items())]

    def specs(self) -> list:
        """The Specs in registration order."""
        return list(self._specs.values())

    def describe(self) -> list:
        return [s.describe() for s in self._specs.values()]

    def all_names(self) -> list:
        """Names and aliases (what a command line accepts)."""
        return [n for s in self._specs.values() for n in (s.name, *s.aliases)]


optimizers = Registry("optimizer", flags=("adapts_weights", "follows", "second_order"))
schemes = Registry("weighting scheme", flags=("adapts", "reports_weights"))
problems = Registry("problem", flags=("exact", "periodic", "inverse"))
