"""``www_authenticate``: the WWW-Authenticate value of the Flask integration (RFC 6750 section 3)."""

from __future__ import annotations

import random
import re

import pytest

from token_validator_client import Reason
from token_validator_client._challenge import DESCRIPTION_MAX_LEN, www_authenticate
from token_validator_client.flask import www_authenticate as exported

NQSCHAR = re.compile(r'[\x20\x21\x23-\x5b\x5d-\x7e]*')
PARAM = r'(?:realm|error|error_description|scope)="[\x20\x21\x23-\x5b\x5d-\x7e]*"'
CHALLENGE = re.compile(rf"Bearer(?: {PARAM}(?:, {PARAM})*)?")


def description(value: str) -> str:
    m = re.search(r'error_description="([^"]*)"', value)
    assert m, value
    return m.group(1)


def test_exported_from_flask_module():
    assert exported is www_authenticate


def test_bare_and_realm_only():
    assert www_authenticate() == "Bearer"
    assert www_authenticate(realm="api") == 'Bearer realm="api"'
    assert www_authenticate(realm="") == "Bearer"
    # error_description only goes with an error code.
    assert www_authenticate(error_description="x") == "Bearer"


def test_full_challenge_in_order():
    value = www_authenticate(
        realm="api", error="insufficient_scope", error_description="scope \"admin\" is required", scope=["openid", "admin"]
    )
    assert value == (
        'Bearer realm="api", error="insufficient_scope", '
        "error_description=\"scope 'admin' is required\", scope=\"openid admin\""
    )


@pytest.mark.parametrize(
    "message, expected",
    [
        # The service shortens long values with U+2026.
        ('issuer "https://x.example/abc\u2026" is not a configured user pool',
         "issuer 'https://x.example/abc...' is not a configured user pool"),
        ('kid "a\\"b\\\\c\u2026" is not in the pool\'s key set', "kid 'a/'b//c...' is not in the pool's key set"),
        ("line one\r\nline two\rthree\nfour\tfive", "line one line two three four five"),
        ("caf\u00e9 na\u00efve \u00c5ngstr\u00f6m \ufb01le", "cafe naive Angstrom file"),
        ("\u65e5\u672c\u8a9e kid", "??? kid"),
        ("\u201csmart\u201d \u2018quotes\u2019 \u2014 dash \u00a0nbsp", "'smart' 'quotes' - dash nbsp"),
        ("nul\x00del\x7fesc\x1bend", "nul del esc end"),
        ("\uff02fullwidth quote\uff3c", "'fullwidth quote/"),  # NFKD makes '"' and '\' of these
        ("  spaced   out  ", "spaced out"),
        # Messages of reasons the dev service cannot be made to produce.
        ("nbf is in the future", "nbf is in the future"),
        ('app client "other\u2026" is not accepted for this pool', "app client 'other...' is not accepted for this pool"),
    ],
)  # fmt: skip
def test_description_is_printable_ascii(message, expected):
    value = www_authenticate(error="invalid_token", error_description=message)
    assert description(value) == expected
    assert CHALLENGE.fullmatch(value), value
    value.encode("ascii")


def test_description_is_bounded():
    value = www_authenticate(error="invalid_token", error_description="kid " + "\u00e9" * 1000)
    got = description(value)
    assert len(got) == DESCRIPTION_MAX_LEN
    assert got.startswith("kid eee") and got.endswith("...")
    short = "x" * DESCRIPTION_MAX_LEN
    assert description(www_authenticate(error="invalid_token", error_description=short)) == short


def test_description_empty_once_cleaned_is_left_out():
    assert www_authenticate(error="invalid_token", error_description="\r\n \t") == 'Bearer error="invalid_token"'
    assert www_authenticate(error="invalid_token", error_description="") == 'Bearer error="invalid_token"'


def test_realm_cannot_inject_a_header():
    value = www_authenticate(realm='a"b\\c\r\nSet-Cookie: x=1', error="invalid_token", error_description="d")
    assert value == "Bearer realm=\"a'b/c Set-Cookie: x=1\", error=\"invalid_token\", error_description=\"d\""


def test_scope_tokens_are_cleaned():
    value = www_authenticate(error="insufficient_scope", scope=["openid", 'admin:write"\\\u2026\u00e9', "", "\u00e9", "a b"])
    assert value.endswith('scope="openid admin:write ab"'), value
    assert CHALLENGE.fullmatch(value)


def test_random_text_always_gives_a_valid_latin1_challenge():
    rng = random.Random(6750)
    alphabet = (
        [chr(c) for c in range(0, 0x80)]
        + list("\u2026\u00e9\u00ff\u0100\u200b\u2028\u2029\u202e\ufeff\ufffd\u65e5\U0001f600\ud800")
        + [chr(rng.randrange(0x80, 0x110000)) for _ in range(200)]
    )
    for _ in range(500):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randrange(0, 400)))
        value = www_authenticate(realm=text, error="invalid_token", error_description=text, scope=[text])
        assert CHALLENGE.fullmatch(value), repr(value)
        value.encode("latin-1")
        for m in re.finditer(r'="([^"]*)"', value):
            assert NQSCHAR.fullmatch(m.group(1))
            assert len(m.group(1)) <= max(DESCRIPTION_MAX_LEN, len(text))


@pytest.mark.parametrize("reason", list(Reason), ids=lambda r: r.name)
def test_every_reason_message_shape(reason):
    """What the Flask integration builds for each Reason: a code and a one-line ASCII description."""
    message = f"{reason}: \u201c{reason.name.lower()}\u201d \u2026\r\n"
    error = "insufficient_scope" if reason in (Reason.MISSING_SCOPE, Reason.MISSING_GROUP) else "invalid_token"
    value = www_authenticate(realm="api", error=error, error_description=message)
    assert description(value) == f"{reason.proto_name}: '{reason.name.lower()}' ..."
    assert CHALLENGE.fullmatch(value)
