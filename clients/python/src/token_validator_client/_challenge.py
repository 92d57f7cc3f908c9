"""The ``WWW-Authenticate: Bearer`` challenge (RFC 6750 section 3, RFC 7235).

Pure and framework-free, so any integration can use it and it can be tested
on its own. The service's messages are free text (they may hold "…",
quotes, backslashes, line breaks, non-ASCII issuers or key ids), while a
header value must be Latin-1 (Werkzeug raises ``UnicodeEncodeError``,
gunicorn ``InvalidResponseHeader`` otherwise) and RFC 6750 restricts the
``error`` and ``error_description`` attributes to printable ASCII without
``"`` and ``\\``. So every value is reduced to that set here.
"""

from __future__ import annotations

import unicodedata
from typing import Optional, Sequence

__all__ = ["DESCRIPTION_MAX_LEN", "www_authenticate"]

#: ``error_description`` (and ``realm``) are cut to this many characters.
DESCRIPTION_MAX_LEN = 200

# Typographic characters NFKD leaves alone, mapped to their ASCII look-alikes.
_LOOKALIKES = str.maketrans(
    {
        "\u2018": "'", "\u2019": "'", "\u201a": "'", "\u201b": "'", "\u2032": "'",
        "\u201c": "'", "\u201d": "'", "\u201e": "'", "\u201f": "'", "\u2033": "'",
        "\u00ab": "'", "\u00bb": "'", "\u2039": "'", "\u203a": "'",
        "\u2010": "-", "\u2011": "-", "\u2012": "-", "\u2013": "-", "\u2014": "-", "\u2212": "-",
        "\u2022": "*", "\u00d7": "x",
        # RFC 6750 allows neither in error / error_description (no quoted-pair).
        '"': "'",
        "\\": "/",
    }
)


def _nqschar_text(text: str, max_len: Optional[int]) -> str:
    """``text`` as RFC 6750 NQSCHARs (%x20-21 / %x23-5B / %x5D-7E), one line, at most ``max_len``."""
    out = []
    # NFKD turns "…" into "...", "é" into "e" + a combining accent, "ﬁ" into "fi".
    for ch in unicodedata.normalize("NFKD", text.translate(_LOOKALIKES)).translate(_LOOKALIKES):
        if " " <= ch <= "~":
            out.append(ch)
        elif ch.isspace() or unicodedata.category(ch) == "Cc":
            out.append(" ")  # CR, LF, TAB, NBSP, other controls: never a header line break
        elif unicodedata.category(ch) == "Mn":
            continue  # the accents NFKD split off
        else:
            out.append("?")
    clean = " ".join("".join(out).split())
    if max_len is not None and len(clean) > max_len:
        clean = clean[: max_len - 3].rstrip() + "..."
    return clean


def www_authenticate(
    *,
    realm: Optional[str] = None,
    error: Optional[str] = None,
    error_description: Optional[str] = None,
    scope: Optional[Sequence[str]] = None,
) -> str:
    """The value of a ``WWW-Authenticate`` header for the Bearer scheme.

    ``Bearer realm="…", error="…", error_description="…", scope="…"``, each
    attribute only when given (and not empty once cleaned); without any,
    just ``Bearer`` (RFC 6750 section 3.1: a request without a token gets no
    error code). The result is always printable ASCII, so a valid Latin-1
    header value under any WSGI server:

    * ``realm``, ``error`` and ``error_description``: characters outside
      %x20-21 / %x23-5B / %x5D-7E are replaced ("…" by "...", accented
      letters by their base letter, ``"`` by ``'``, ``\\`` by ``/``, CR, LF
      and other whitespace by a space, anything else by ``?``), runs of
      spaces collapse, and ``realm`` and ``error_description`` are cut to
      :data:`DESCRIPTION_MAX_LEN` characters (ending in ``...``).
    * ``scope``: the scope tokens, space-separated, each stripped of
      characters outside %x21 / %x23-5B / %x5D-7E.
    """
    params = []
    if realm is not None:
        value = _nqschar_text(str(realm), DESCRIPTION_MAX_LEN)
        if value:
            params.append(f'realm="{value}"')
    if error:
        value = _nqschar_text(str(error), None)
        if value:
            params.append(f'error="{value}"')
            if error_description is not None:
                description = _nqschar_text(str(error_description), DESCRIPTION_MAX_LEN)
                if description:
                    params.append(f'error_description="{description}"')
    if scope:
        tokens = ("".join(c for c in str(s) if "!" <= c <= "~" and c not in '"\\') for s in scope)
        value = " ".join(t for t in tokens if t)
        if value:
            params.append(f'scope="{value}"')
    return "Bearer" + (" " + ", ".join(params) if params else "")
