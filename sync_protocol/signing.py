"""Ed25519 keys of nodes: a node signs every batch; the hub verifies with the key it enrolled."""

from __future__ import annotations

import base64

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from .errors import SignatureError

SIGNATURE_BYTES = 64


class Signer:
    def __init__(self, private_key: bytes) -> None:
        self._key = Ed25519PrivateKey.from_private_bytes(private_key)

    @classmethod
    def generate(cls) -> Signer:
        return cls(Ed25519PrivateKey.generate().private_bytes_raw())

    @property
    def private_bytes(self) -> bytes:
        return self._key.private_bytes_raw()

    @property
    def public_bytes(self) -> bytes:
        return self._key.public_key().public_bytes_raw()

    @property
    def public_b64(self) -> str:
        return base64.b64encode(self.public_bytes).decode("ascii")

    def sign(self, data: bytes) -> bytes:
        return self._key.sign(data)


def public_key_from_b64(text: str) -> bytes:
    try:
        raw = base64.b64decode(text, validate=True)
        Ed25519PublicKey.from_public_bytes(raw)
    except Exception as exc:
        raise SignatureError("public key must be 32 bytes of Ed25519, base64-encoded") from exc
    return raw


def verify(public_key: bytes, signature: bytes, data: bytes) -> None:
    try:
        Ed25519PublicKey.from_public_bytes(public_key).verify(signature, data)
    except InvalidSignature as exc:
        raise SignatureError(
            "batch signature does not verify with the key enrolled for this node; "
            "the batch was altered or signed by another key"
        ) from exc
    except ValueError as exc:
        raise SignatureError("enrolled public key is not a valid Ed25519 key") from exc
