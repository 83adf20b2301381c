"""Every problem code the service answers with, and what each one means: the pages behind `/problems/{code}`.

A code comes from one of two places:

- a LoyaltyError subclass anywhere in the package; its own docstring is its page (a first paragraph on what
  the code means, a blank line, then what the caller should do);
- loyalty_api.http.problems.CLASSLESS_PROBLEMS, for the codes rendered without a class (routing and schema
  refusals, internal errors).

Several classes may share a code (`validation_error`, `idempotency_request_in_flight`, …): the code's page
gathers what all of them say. The code-less base, `loyalty_error`, is never answered and has no page.

The classes are found by importing every module of the package and walking LoyaltyError's subclasses. The app
imports most of them through its routers, but not all (the CLI's, anything imported lazily or only by the
worker), and a class the walk never saw would leave its `type` a dead link; importing the package makes
"defined in the package" and "has a page" the same thing, independent of who imports whom.
"""

from __future__ import annotations

import functools
import importlib
import inspect
import logging
import pkgutil
from dataclasses import dataclass

import loyalty_api
from loyalty_api.errors import LoyaltyError
from loyalty_api.http.problems import CLASSLESS_PROBLEMS

logger = logging.getLogger("loyalty_api.problems")

_PACKAGE = loyalty_api.__name__
# Where problems rendered without a class are explained.
CLASSLESS_SOURCE = "loyalty_api.http.problems.CLASSLESS_PROBLEMS"


@dataclass(frozen=True, slots=True)
class ProblemType:
    code: str
    status: int | None  # None: it varies (`http_error`)
    title: str
    meaning: tuple[str, ...]  # paragraphs
    what_to_do: tuple[str, ...]
    sources: tuple[str, ...]  # the classes (module.qualname) and tables that answer with the code

    @property
    def path(self) -> str:
        return f"/problems/{self.code}"


@dataclass(frozen=True, slots=True)
class Explanation:
    meaning: tuple[str, ...]
    what_to_do: tuple[str, ...]


def explain(text: str | None) -> Explanation:
    """Split a docstring: its first paragraph is what the code means, the rest what to do about it. The lines
    of a paragraph are joined, so the text reads the same whatever its wrapping in the source."""
    paragraphs = [
        " ".join(line.strip() for line in block.splitlines())
        for block in inspect.cleandoc(text or "").split("\n\n")
    ]
    paragraphs = [p for p in paragraphs if p]
    return Explanation(tuple(paragraphs[:1]), tuple(paragraphs[1:]))


def import_package() -> None:
    """Import every module of the package, so that every error class it defines exists."""
    for module in pkgutil.walk_packages(loyalty_api.__path__, f"{_PACKAGE}."):
        if module.name.rsplit(".", 1)[-1] == "__main__":
            continue  # runs a program when imported
        try:
            importlib.import_module(module.name)
        except ImportError:  # an optional dependency missing: its errors cannot be answered either
            logger.warning("module not imported for the problem pages", extra={"module_name": module.name})


def error_classes() -> list[type[LoyaltyError]]:
    """Every LoyaltyError subclass defined in the package (not the ones tests or plug-ins define), in a stable
    order: the base classes before their subclasses."""
    import_package()
    found: dict[type[LoyaltyError], None] = {}
    pending = list(LoyaltyError.__subclasses__())
    while pending:
        cls = pending.pop()
        if cls in found:
            continue
        pending.extend(cls.__subclasses__())
        if cls.__module__ == _PACKAGE or cls.__module__.startswith(f"{_PACKAGE}."):
            found[cls] = None
    return sorted(found, key=lambda c: (len(c.__mro__), c.__module__, c.__qualname__))


def _unique(paragraphs: list[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(paragraphs))


def build() -> dict[str, ProblemType]:
    """The catalogue, by code, sorted by code."""
    by_code: dict[str, list[type[LoyaltyError]]] = {}
    for cls in error_classes():
        if cls.code != LoyaltyError.code:
            by_code.setdefault(cls.code, []).append(cls)
    catalogue: dict[str, ProblemType] = {}
    for code in sorted(by_code.keys() | CLASSLESS_PROBLEMS.keys()):
        classes = by_code.get(code, [])
        classless = CLASSLESS_PROBLEMS.get(code)
        explanations = [explain(cls.__doc__) for cls in classes]
        sources = [f"{cls.__module__}.{cls.__qualname__}" for cls in classes]
        status: int | None = classes[0].status if classes else None
        title = classes[0].title if classes else code
        if classless is not None:
            # The table's text is the general case, the classes' the particular ones: it comes first.
            explanations.insert(0, explain(classless[2]))
            sources.insert(0, CLASSLESS_SOURCE)
            status = status if classless[0] is None else classless[0]
            title = classless[1]
        catalogue[code] = ProblemType(
            code=code,
            status=status,
            title=title,
            meaning=_unique([p for e in explanations for p in e.meaning]),
            what_to_do=_unique([p for e in explanations for p in e.what_to_do]),
            sources=tuple(sources),
        )
    return catalogue


@functools.cache
def problem_types() -> dict[str, ProblemType]:
    """The catalogue, built once (on the first request for a page: the package must be fully imported)."""
    return build()
