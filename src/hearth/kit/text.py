"""One-line reasons from exceptions, fit for a log line, a health detail or an error page."""

from __future__ import annotations

from hearth.kit.urls import mask_urls


def first_line(exc: BaseException) -> str:
    """The first non-blank line of ``exc``'s message (its type's name when it has none),
    with any URL masked (``mask_urls``): libraries quote connection URLs in their errors."""
    for line in str(exc).splitlines():
        if line.strip():
            return mask_urls(line.strip())
    return type(exc).__name__


def innermost(exc: BaseException) -> BaseException:
    """The error at the bottom of ``exc``'s chain of causes: the one that names the cause
    (a refused connection) rather than the wrapper a library added on the way up."""
    while (inner := exc.__cause__ or exc.__context__) is not None:
        exc = inner
    return exc
