"""A refusal of the town server: an HTTP status, a code the device branches on, and one
sentence for the person (English in the log; the server's language in the reply). Raised by
the service (:mod:`sync.server.service`) and by the HTTP layers (:mod:`sync.server.app`,
:mod:`sync.server.anchors`), which all import it from here.
"""

from __future__ import annotations

from typing import Any

from fastapi import Request

from fieldkit.i18n import current_language, has_key, t


class Refusal(Exception):
    """``message`` is the English sentence (log, English servers); ``key`` + ``params`` say it
    in the server's language (else the code's ``http.<code>`` words)."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        headers: dict | None = None,
        key: str | None = None,
        **params: Any,
    ) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.headers = status, code, message, headers
        self.key, self.params = key, params

    def text(self, lang: str | None = None) -> str:
        """The human sentence of the HTTP body, in the server's language."""
        lang = lang or current_language()
        if lang == "en":
            return self.message
        if self.key:
            return t(self.key, lang, **self.params)
        if has_key("http." + self.code):
            return t("http." + self.code, lang)
        return self.message


def _too_many(who: str, wait: float) -> Refusal:
    return Refusal(
        429,
        "rate_limited",
        f"too many requests from {who}: wait {wait:.1f} s",
        {"Retry-After": str(max(1, round(wait)))},
        key="srvhttp.rate_limited",
        wait=f"{wait:.1f}",
    )


def _client(request: Request) -> str:
    return request.client.host if request.client else "?"
