#!/usr/bin/env python3
"""Writes secrets files encrypted the way the Ruby odysseus tool writes them, with
Python's `cryptography` (not odysseus's code), for odysseus's decryption test:

  two '#' comment lines, then base64(iv), base64(auth tag), base64(ciphertext), each on
  its own line; AES-256-GCM with a 12-byte IV and no associated data; the key is
  PBKDF2-HMAC-SHA256 over the master key's bytes, salted with the raw IV, 10 000
  iterations, 32 bytes; the plaintext is YAML.

Run once; its outputs are committed beside it. The IVs are fixed so the files are
reproducible (never do that for real secrets).
"""
import base64
import pathlib

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.pbkdf2 import PBKDF2HMAC

MASTER_KEY = "4f1d0c0ffee5a1c9b8e7d6c5b4a39281706f5e4d3c2b1a09f8e7d6c5b4a39281"
HERE = pathlib.Path(__file__).parent


def encrypt(plaintext: bytes, iv: bytes) -> str:
    key = PBKDF2HMAC(algorithm=hashes.SHA256(), length=32, salt=iv, iterations=10_000).derive(
        MASTER_KEY.encode()
    )
    sealed = AESGCM(key).encrypt(iv, plaintext, None)
    ciphertext, tag = sealed[:-16], sealed[-16:]
    return "\n".join(
        [
            "# odysseus encrypted secrets (AES-256-GCM)",
            "# edit with: odysseus secrets edit",
            base64.b64encode(iv).decode(),
            base64.b64encode(tag).decode(),
            base64.b64encode(ciphertext).decode(),
        ]
    ) + "\n"


# Keys as strings, the way most files have them.
(HERE / "secrets-strings.yml.enc").write_text(
    encrypt(
        b"DATABASE_URL: postgres://app:s3cr3t-pw@db.internal:5432/app\n"
        b"RAILS_MASTER_KEY: 0123456789abcdef0123456789abcdef\n"
        b"PIN: 1234\n",
        bytes(range(12)),
    )
)
# Keys as Ruby symbols (`:NAME:`), as YAML.dump of a Ruby hash with symbol keys writes them.
(HERE / "secrets-symbols.yml.enc").write_text(
    encrypt(
        b"---\n:DATABASE_URL: postgres://app:other-pw@db.internal:5432/app\n:API_TOKEN: tok_live_42\n",
        bytes(range(100, 112)),
    )
)
(HERE / "master.key").write_text(MASTER_KEY + "\n")
