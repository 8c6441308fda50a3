"""Bearer JWT verification: what is accepted, what is refused, and configuration refused early."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from typing import Any
from uuid import UUID

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from services.auth.jwt import MAX_TOKEN_LENGTH, JwtVerifier, bearer_token
from services.auth.principal import Scope
from services.resources.port import PLATFORM_CUSTOMER_ID
from services.settings import Settings

SECRET = "throwaway-hmac-secret-for-tests-only-" + "0123456789abcdef" * 2
CUSTOMER = UUID("5f0c6b8e-2d4a-4c1e-9a57-3b8e1f2d4c6a")
READ_WRITE = f"{Scope.READ} {Scope.WRITE}"


def jwt_settings(**overrides: object) -> Settings:
    """Settings with every `jwt_*` field given, so the environment cannot leak into a test."""
    fields: dict[str, Any] = {
        "pg_password": "unused",
        "jwt_secret": SECRET,
        "jwt_public_key": None,
        "jwt_algorithms": ["HS256"],
        "jwt_audience": None,
        "jwt_issuer": None,
    }
    return Settings(**(fields | overrides))


def claims(**overrides: object) -> dict[str, Any]:
    base = {"sub": str(CUSTOMER), "exp": int(time.time()) + 300, "scope": READ_WRITE}
    return {k: v for k, v in (base | overrides).items() if v is not None}


def hs256(payload: dict[str, Any], secret: str = SECRET, algorithm: str = "HS256") -> str:
    return jwt.encode(payload, secret, algorithm=algorithm)


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def hand_made(header: dict[str, Any], payload: dict[str, Any], key: bytes | None) -> str:
    """A token built without PyJWT, to send what PyJWT itself would refuse to sign."""
    signing_input = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(payload).encode())}"
    signature = (
        b"" if key is None else hmac.new(key, signing_input.encode(), hashlib.sha256).digest()
    )
    return f"{signing_input}.{b64(signature)}"


@pytest.fixture(scope="module")
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def public_pem(key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey) -> str:
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


def test_valid_hs256_token_gives_the_customer_and_its_scopes() -> None:
    principal = JwtVerifier(jwt_settings()).verify(hs256(claims()))

    assert principal is not None
    assert principal.customer_id == CUSTOMER
    assert principal.scopes == {Scope.READ, Scope.WRITE}
    assert (principal.subject, principal.via) == (str(CUSTOMER), "jwt")
    assert not principal.is_operator


def test_expired_token_is_refused() -> None:
    token = hs256(claims(exp=int(time.time()) - 5))

    assert JwtVerifier(jwt_settings()).verify(token) is None


def test_expired_token_within_the_leeway_is_accepted() -> None:
    token = hs256(claims(exp=int(time.time()) - 5))

    assert JwtVerifier(jwt_settings(), leeway_seconds=60).verify(token) is not None


@pytest.mark.parametrize("missing", ["exp", "sub"])
def test_token_without_a_required_claim_is_refused(missing: str) -> None:
    token = hs256({k: v for k, v in claims().items() if k != missing})

    assert JwtVerifier(jwt_settings()).verify(token) is None


def test_token_not_yet_valid_is_refused() -> None:
    token = hs256(claims(nbf=int(time.time()) + 120))

    assert JwtVerifier(jwt_settings()).verify(token) is None


def test_token_signed_with_another_secret_is_refused() -> None:
    token = hs256(claims(), secret="another-throwaway-secret-of-enough-length-0123")

    assert JwtVerifier(jwt_settings()).verify(token) is None


def test_token_with_a_tampered_payload_is_refused() -> None:
    header, _, signature = hs256(claims()).split(".")
    forged = b64(json.dumps(claims(sub=str(PLATFORM_CUSTOMER_ID))).encode())

    assert JwtVerifier(jwt_settings()).verify(f"{header}.{forged}.{signature}") is None


@pytest.mark.parametrize("alg", ["none", "None", "NONE"])
def test_unsigned_token_with_alg_none_is_refused(alg: str) -> None:
    token = hand_made({"alg": alg, "typ": "JWT"}, claims(), key=None)

    assert JwtVerifier(jwt_settings()).verify(token) is None


def test_token_of_an_algorithm_not_configured_is_refused() -> None:
    token = hs256(claims(), algorithm="HS512")

    assert JwtVerifier(jwt_settings()).verify(token) is None


def test_hmac_token_keyed_with_the_public_key_is_refused(rsa_key: rsa.RSAPrivateKey) -> None:
    pem = public_pem(rsa_key)
    verifier = JwtVerifier(jwt_settings(jwt_algorithms=["HS256", "RS256"], jwt_public_key=pem))
    token = hand_made({"alg": "HS256", "typ": "JWT"}, claims(), key=pem.encode())

    assert verifier.verify(token) is None
    assert verifier.verify(hs256(claims())) is not None


def test_without_any_key_every_token_is_refused() -> None:
    verifier = JwtVerifier(jwt_settings(jwt_secret=None))

    assert not verifier.enabled
    assert verifier.verify(hs256(claims())) is None


@pytest.mark.parametrize("value", ["not-a-token", "", "a.b.c", "x" * (MAX_TOKEN_LENGTH + 1)])
def test_malformed_token_is_refused(value: str) -> None:
    assert JwtVerifier(jwt_settings()).verify(value) is None


def test_token_of_the_configured_audience_is_accepted() -> None:
    verifier = JwtVerifier(jwt_settings(jwt_audience="otc-api"))

    assert verifier.verify(hs256(claims(aud="otc-api"))) is not None
    assert verifier.verify(hs256(claims(aud=["other", "otc-api"]))) is not None


@pytest.mark.parametrize("aud", ["other-api", ["other-api"], None])
def test_token_without_the_configured_audience_is_refused(aud: object) -> None:
    verifier = JwtVerifier(jwt_settings(jwt_audience="otc-api"))

    assert verifier.verify(hs256(claims(aud=aud))) is None


def test_token_with_an_audience_is_refused_when_none_is_configured() -> None:
    assert JwtVerifier(jwt_settings()).verify(hs256(claims(aud="otc-api"))) is None


def test_token_must_come_from_the_configured_issuer() -> None:
    verifier = JwtVerifier(jwt_settings(jwt_issuer="https://idp.example"))

    assert verifier.verify(hs256(claims(iss="https://idp.example"))) is not None
    assert verifier.verify(hs256(claims(iss="https://evil.example"))) is None
    assert verifier.verify(hs256(claims())) is None


@pytest.mark.parametrize("sub", ["alice", "42", "5f0c6b8e-2d4a-4c1e-9a57"])
def test_subject_that_is_not_a_uuid_is_refused(sub: str) -> None:
    assert JwtVerifier(jwt_settings()).verify(hs256(claims(sub=sub))) is None


def test_subject_must_be_a_string() -> None:
    assert JwtVerifier(jwt_settings()).verify(hs256(claims(sub=12345))) is None


@pytest.mark.parametrize(
    ("scope_claims", "expected"),
    [
        ({"scope": f"  {Scope.READ}   {Scope.WRITE} "}, {Scope.READ, Scope.WRITE}),
        ({"scope": [Scope.READ.value]}, {Scope.READ}),
        ({"scope": None, "scp": [Scope.WRITE.value]}, {Scope.WRITE}),
        ({"scope": None, "scp": Scope.READ.value}, {Scope.READ}),
        ({"scope": Scope.READ.value, "scp": [Scope.WRITE.value]}, {Scope.READ, Scope.WRITE}),
        ({"scope": f"openid profile {Scope.READ}"}, {Scope.READ}),
        ({"scope": None}, set()),
        ({"scope": ""}, set()),
    ],
)
def test_scopes_are_read_from_scope_and_scp(
    scope_claims: dict[str, Any], expected: set[str]
) -> None:
    principal = JwtVerifier(jwt_settings()).verify(hs256(claims(**scope_claims)))

    assert principal is not None
    assert principal.scopes == expected


@pytest.mark.parametrize("scope", [42, {"read": True}, [Scope.READ.value, 7]])
def test_scope_claim_of_another_shape_is_refused(scope: object) -> None:
    assert JwtVerifier(jwt_settings()).verify(hs256(claims(scope=scope))) is None


def test_operator_scope_is_refused_for_a_customer() -> None:
    token = hs256(claims(scope=f"{Scope.READ} {Scope.OPERATE}"))

    assert JwtVerifier(jwt_settings()).verify(token) is None


OPERATOR_ID = "7d0c2a58-3b1e-4e0a-9c55-1f2e3d4c5b6a"


def operator_claims(**overrides: object) -> dict[str, Any]:
    named = {
        "sub": str(PLATFORM_CUSTOMER_ID),
        "scope": f"{Scope.OPERATE} {Scope.READ}",
        "operator_id": OPERATOR_ID,
        "name": "Ada Lovelace",
    }
    return claims(**(named | overrides))


def test_operator_scope_is_granted_to_the_platform_customer_naming_its_operator() -> None:
    principal = JwtVerifier(jwt_settings()).verify(hs256(operator_claims()))

    assert principal is not None
    assert principal.is_operator
    assert principal.customer_id == PLATFORM_CUSTOMER_ID
    assert principal.operator is not None
    assert (str(principal.operator.id), principal.operator.name) == (OPERATOR_ID, "Ada Lovelace")


@pytest.mark.parametrize(
    "overrides",
    [
        {"operator_id": None},
        {"name": None},
        {"name": "  "},
        {"operator_id": "not-a-uuid"},
        {"operator_id": 7},
    ],
)
def test_an_operator_token_that_names_no_operator_is_refused(overrides: dict[str, Any]) -> None:
    assert JwtVerifier(jwt_settings()).verify(hs256(operator_claims(**overrides))) is None


def test_rs256_token_is_verified_with_the_configured_public_key(
    rsa_key: rsa.RSAPrivateKey,
) -> None:
    verifier = JwtVerifier(
        jwt_settings(jwt_secret=None, jwt_algorithms=["RS256"], jwt_public_key=public_pem(rsa_key))
    )

    principal = verifier.verify(jwt.encode(claims(), rsa_key, algorithm="RS256"))

    assert principal is not None
    assert principal.customer_id == CUSTOMER


def test_rs256_token_signed_by_another_key_is_refused(rsa_key: rsa.RSAPrivateKey) -> None:
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    verifier = JwtVerifier(
        jwt_settings(jwt_secret=None, jwt_algorithms=["RS256"], jwt_public_key=public_pem(rsa_key))
    )

    assert verifier.verify(jwt.encode(claims(), other, algorithm="RS256")) is None


def test_es256_token_is_verified_with_the_configured_public_key() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    verifier = JwtVerifier(
        jwt_settings(jwt_secret=None, jwt_algorithms=["ES256"], jwt_public_key=public_pem(key))
    )

    assert verifier.verify(jwt.encode(claims(), key, algorithm="ES256")) is not None
    assert verifier.verify(hs256(claims())) is None


@pytest.mark.parametrize("algorithms", [["none"], ["HS256", "None"], ["XS999"]])
def test_unaccepted_algorithm_in_the_settings_fails_at_construction(
    algorithms: list[str],
) -> None:
    with pytest.raises(ValueError, match="not an accepted JWT algorithm"):
        JwtVerifier(jwt_settings(jwt_algorithms=algorithms))


def test_short_hmac_secret_fails_at_construction() -> None:
    with pytest.raises(ValueError, match="too weak") as refused:
        JwtVerifier(jwt_settings(jwt_secret="short-secret"))

    assert "short-secret" not in str(refused.value)


def test_private_key_in_the_public_key_setting_fails_at_construction(
    rsa_key: rsa.RSAPrivateKey,
) -> None:
    private_pem = rsa_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()

    with pytest.raises(ValueError, match="private key"):
        JwtVerifier(
            jwt_settings(jwt_secret=None, jwt_algorithms=["RS256"], jwt_public_key=private_pem)
        )


def test_public_key_of_the_wrong_type_fails_at_construction(rsa_key: rsa.RSAPrivateKey) -> None:
    with pytest.raises(ValueError, match="not usable"):
        JwtVerifier(
            jwt_settings(
                jwt_secret=None, jwt_algorithms=["ES256"], jwt_public_key=public_pem(rsa_key)
            )
        )


@pytest.mark.parametrize(
    ("header", "token"),
    [
        ("Bearer abc.def.ghi", "abc.def.ghi"),
        ("bearer abc.def.ghi", "abc.def.ghi"),
        ("  Bearer   abc.def.ghi  ", "abc.def.ghi"),
        ("Basic dXNlcjpwdw==", None),
        ("Bearer", None),
        ("Bearer ", None),
        ("Bearer a b", None),
        ("abc.def.ghi", None),
        (None, None),
    ],
)
def test_bearer_token_is_taken_from_the_authorization_header(
    header: str | None, token: str | None
) -> None:
    assert bearer_token(header) == token
