"""Password hashing, access tokens and refresh tokens: pure functions, no I/O."""

import hashlib
import hmac
import secrets
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache

import jwt
from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError
from bson import ObjectId
from bson.errors import InvalidId

# OWASP's minimum for Argon2id: 19 MiB, two passes, one lane.
PASSWORD_HASHER = PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1, type=Type.ID)
# The one algorithm tokens are signed and verified with; a token naming another is refused.
ALGORITHM = "HS256"
REQUIRED_CLAIMS = ["sub", "exp", "iat", "iss", "aud", "jti", "sid"]


def hash_password(password: str) -> str:
    return PASSWORD_HASHER.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    try:
        return PASSWORD_HASHER.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    return PASSWORD_HASHER.check_needs_rehash(password_hash)


@dataclass(frozen=True, slots=True)
class AccessClaims:
    user_id: ObjectId
    session_id: ObjectId
    token_id: str
    issued_at: datetime
    expires: float  # seconds since the epoch


def create_access_token(
    *, user_id: str, session_id: str, key: str, issuer: str, audience: str, ttl: int
) -> str:
    now = datetime.now(UTC)
    claims = {
        "sub": user_id,
        "sid": session_id,
        "jti": uuid.uuid4().hex,
        "iat": now,
        "exp": now + timedelta(seconds=ttl),
        "iss": issuer,
        "aud": audience,
    }
    return jwt.encode(claims, key, algorithm=ALGORITHM)


def decode_access_token(token: str, *, key: str, issuer: str, audience: str) -> AccessClaims:
    """Returns the token's claims, or raises jwt.InvalidTokenError for any flaw at all."""
    claims = _verified_claims(token, key, issuer, audience)
    if claims.expires <= time.time():  # a remembered token is still checked for expiry
        raise jwt.ExpiredSignatureError("Signature has expired")
    return claims


# A client sends the same token with every request until it expires: its signature and claims
# are checked once, and only its expiry again. Failures raise, so they are never remembered.
@lru_cache(maxsize=4096)
def _verified_claims(token: str, key: str, issuer: str, audience: str) -> AccessClaims:
    claims = jwt.decode(
        token,
        key,
        algorithms=[ALGORITHM],
        audience=audience,
        issuer=issuer,
        options={"require": REQUIRED_CLAIMS},
    )
    if not all(isinstance(claims[name], str) for name in ("sub", "sid", "jti")):
        raise jwt.InvalidTokenError("malformed claims")
    if not isinstance(claims["exp"], int | float):
        raise jwt.InvalidTokenError("malformed expiry")
    try:
        user_id, session_id = ObjectId(claims["sub"]), ObjectId(claims["sid"])
    except InvalidId as error:
        raise jwt.InvalidTokenError("malformed ids") from error
    return AccessClaims(
        user_id=user_id,
        session_id=session_id,
        token_id=claims["jti"],
        issued_at=datetime.fromtimestamp(claims["iat"], UTC),
        expires=float(claims["exp"]),
    )


def new_refresh_token() -> str:
    return secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    # Refresh tokens and API keys carry 256 random bits, so a fast hash cannot be brute-forced.
    return hashlib.sha256(token.encode()).hexdigest()


def tokens_equal(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())
