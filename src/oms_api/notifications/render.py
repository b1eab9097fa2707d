"""Every email's subject, text and HTML, from Jinja2 templates rendered in a sandbox.

The package ships a default template for each kind (`templates/<kind>.subject.txt`,
`<kind>.txt`, `<kind>.html`, the HTML extending `base.html`); a channel may override any
part of any kind. Every template — shipped or a channel's — runs in Jinja2's immutable
sandbox: no attribute starting with `_`, no Python internals, no method that changes a
value, no file (the loader serves the shipped templates by name and nothing else), no
`*`/`**`, format width or string filter that builds something huge, and no render longer
than `RENDER_SECONDS` (an alarm interrupts a template that loops for ever). A channel's template that fails on a sample
order is refused when it is saved (`check_overrides`), not found broken in an email later.
"""

from __future__ import annotations

import operator
import re
import signal
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache, update_wrapper
from importlib import resources
from typing import Any

from jinja2 import StrictUndefined, Template, TemplateError, TemplateNotFound, select_autoescape
from jinja2.exceptions import SecurityError
from jinja2.sandbox import ImmutableSandboxedEnvironment

from oms_api.domain.notifications import TEMPLATE_PARTS, Kind, format_money

MAX_OUTPUT_CHARS = 200_000
MAX_SUBJECT_CHARS = 250
MAX_SEQUENCE = 10_000  # the longest string or list `*` (or a filter) may build in a template
RENDER_SECONDS = 0.5  # one part of one email; the shipped templates take milliseconds


class TemplateProblem(Exception):
    """A template that cannot be rendered; `part` is `<kind>.<subject|text|html>`."""

    def __init__(self, part: str, message: str) -> None:
        super().__init__(f"{part}: {message}")
        self.part = part
        self.message = message


@dataclass(frozen=True, slots=True)
class Rendered:
    subject: str
    text: str
    html: str


def _shipped_source(name: str) -> str | None:
    if "/" in name or "\\" in name or name.startswith("."):
        return None
    file = resources.files("oms_api.notifications") / "templates" / name
    return file.read_text(encoding="utf-8") if file.is_file() else None


def _loader(name: str) -> str:
    source = _shipped_source(name)
    if source is None:
        raise TemplateNotFound(name)
    return source


def _safe_mul(a: Any, b: Any) -> Any:
    for value, times in ((a, b), (b, a)):
        too_long = isinstance(value, str | list | tuple) and isinstance(times, int)
        if too_long and len(value) * times > MAX_SEQUENCE:
            raise SecurityError("the result of * would be too long")
    return operator.mul(a, b)


def _safe_pow(a: Any, b: Any) -> Any:
    if isinstance(b, int | float) and abs(b) > 100:
        raise SecurityError("the exponent is too large")
    return operator.pow(a, b)


# A width or precision in a format (`%1000000000d`, `{:>1000000000}`) builds a string of
# that size before anything can measure it: no number of more than 3 digits in a format.
_BIG_NUMBER = re.compile(r"\d{4,}")


def _check_format(spec: Any) -> None:
    if isinstance(spec, str) and _BIG_NUMBER.search(spec):
        raise SecurityError("a width or precision over 999 in a format")


def _safe_mod(a: Any, b: Any) -> Any:
    _check_format(a)
    return operator.mod(a, b)


def _bounded(limit_of: Callable[..., int], filter_: Callable[..., Any]) -> Callable[..., Any]:
    """`filter_`, refused when the size it would build (`limit_of(*args)`) is too large."""

    # Jinja passes a context, an eval context or the environment first to some filters.
    skip = 1 if hasattr(filter_, "jinja_pass_arg") else 0

    def checked(*args: Any, **kwargs: Any) -> Any:
        if limit_of(*args[skip:], **kwargs) > MAX_SEQUENCE:
            raise SecurityError(f"{filter_.__name__} would build too long a string")
        return filter_(*args, **kwargs)

    return update_wrapper(checked, filter_)


def _width(value: Any, width: Any = 80, *_: Any, **__: Any) -> int:
    return int(width) if isinstance(width, int | float) else 0


def _replaced_length(value: Any, old: Any = "", new: Any = "", count: Any = None, **_: Any) -> int:
    text, old, new = str(value), str(old), str(new)
    times = text.count(old) if old else len(text) + 1
    return len(text) + times * max(len(new) - len(old), 0)


def _indent_size(value: Any, width: Any = 4, *_: Any, **__: Any) -> int:
    step = width if isinstance(width, int) else len(str(width))
    return len(str(value)) + (str(value).count("\n") + 1) * step


class _TooSlow(BaseException):
    """The render ran out of time (raised by the alarm, so that no `except Exception` in a
    template's code path swallows it)."""


@contextmanager
def _deadline(seconds: float) -> Iterator[None]:
    """Interrupt what runs in this thread after `seconds` (a template looping for ever).
    Signals reach the main thread only: elsewhere this guard is not set (every render of
    the service — the API and the notifier — runs on the event loop's main thread)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def expired(_signum: int, _frame: Any) -> None:
        raise _TooSlow

    previous = signal.signal(signal.SIGALRM, expired)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


class _Sandbox(ImmutableSandboxedEnvironment):
    intercepted_binops = frozenset({"*", "**", "%"})

    def call_binop(self, context: Any, operator_: str, left: Any, right: Any) -> Any:
        if operator_ == "*":
            return _safe_mul(left, right)
        if operator_ == "**":
            return _safe_pow(left, right)
        if operator_ == "%":
            return _safe_mod(left, right)
        return super().call_binop(context, operator_, left, right)

    def wrap_str_format(self, value: Any) -> Callable[..., str] | None:
        """`'…'.format(…)`, sandboxed as Jinja does, and no huge width in the format."""
        wrapped = super().wrap_str_format(value)
        if wrapped is None:
            return None
        _check_format(value.__self__)
        return wrapped


def _environment(html: bool) -> _Sandbox:
    from jinja2 import FunctionLoader

    env = _Sandbox(
        loader=FunctionLoader(_loader),
        autoescape=select_autoescape(default=html, default_for_string=html),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["money"] = format_money
    env.filters["date"] = _date
    # Filters that build a string as large as a number they are given: bounded.
    for name, size in (("center", _width), ("wordwrap", _width), ("indent", _indent_size),
                       ("replace", _replaced_length)):  # fmt: skip
        env.filters[name] = _bounded(size, env.filters[name])
    plain_format = env.filters["format"]

    def format_(value: Any, *args: Any, **kwargs: Any) -> Any:
        _check_format(value)
        return plain_format(value, *args, **kwargs)

    env.filters["format"] = format_
    return env


def _date(value: str | None) -> str:
    """An RFC 3339 time as a date a person reads: `2 December 2026`."""
    if not value:
        return ""
    from datetime import datetime

    try:
        when = datetime.fromisoformat(str(value))
    except ValueError:
        return str(value)
    return f"{when.day} {when:%B %Y}"


@lru_cache(maxsize=2)
def environment(html: bool) -> _Sandbox:
    return _environment(html)


@lru_cache(maxsize=512)
def _compiled(source: str, html: bool) -> Template:
    """A template compiled once per source (compiling costs far more than rendering)."""
    return environment(html).from_string(source)


def _render(part: str, source: str, context: Mapping[str, Any], *, html: bool) -> str:
    try:
        with _deadline(RENDER_SECONDS):
            out = _compiled(source, html).render(**context)
    except _TooSlow:
        raise TemplateProblem(
            part, f"takes longer than {RENDER_SECONDS} s to render (a loop too long?)"
        ) from None
    except SecurityError as exc:
        raise TemplateProblem(part, f"not allowed in a template: {exc}") from exc
    except TemplateError as exc:
        raise TemplateProblem(part, f"{type(exc).__name__}: {exc}") from exc
    except Exception as exc:  # a template's own error (division by zero, a bad filter value)
        raise TemplateProblem(part, f"{type(exc).__name__}: {exc}") from exc
    if len(out) > MAX_OUTPUT_CHARS:
        raise TemplateProblem(part, f"renders more than {MAX_OUTPUT_CHARS} characters")
    return out


def default_source(kind: Kind, part: str) -> str:
    name = {"subject": f"{kind.value}.subject.txt", "text": f"{kind.value}.txt",
            "html": f"{kind.value}.html"}[part]  # fmt: skip
    source = _shipped_source(name)
    if source is None:  # the package ships every one (tests/test_notifications.py)
        raise RuntimeError(f"the default template {name} is missing from the package")
    return source


def render(
    kind: Kind, context: Mapping[str, Any], overrides: Mapping[str, str] | None = None
) -> Rendered:
    """The email of `kind` for `context`; `overrides`: the channel's parts for this kind.
    Raises TemplateProblem."""
    overrides = overrides or {}
    parts: dict[str, str] = {}
    for part in TEMPLATE_PARTS:
        source = overrides.get(part) or default_source(kind, part)
        parts[part] = _render(f"{kind.value}.{part}", source, context, html=part == "html")
    subject = " ".join(parts["subject"].split())
    if not subject:
        raise TemplateProblem(f"{kind.value}.subject", "renders an empty subject")
    return Rendered(subject[:MAX_SUBJECT_CHARS], parts["text"], parts["html"])


def check_overrides(
    templates: Mapping[str, Mapping[str, str]],
    sample: Callable[[Kind], Mapping[str, Any]],
) -> list[TemplateProblem]:
    """Every problem of a channel's templates, each rendered with `sample(kind)`."""
    problems: list[TemplateProblem] = []
    for kind_name, parts in templates.items():
        kind = Kind(kind_name)
        for part, source in parts.items():
            if not source:
                continue
            try:
                _render(f"{kind.value}.{part}", source, sample(kind), html=part == "html")
            except TemplateProblem as problem:
                problems.append(problem)
    return problems
