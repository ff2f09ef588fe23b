"""Keyed tokens for privacy-preserving linkage: what two agencies can exchange instead of names and dates.

Two encodings, both under a secret the parties share for one data-sharing agreement (and nobody else holds):

**Keyed hash tokens** (:func:`keyed_tokens`): HMAC-SHA256 of each normalised comparison token. Equal inputs
give equal tokens, so the exact and the fuzzy-by-design levels of the probabilistic model (nickname, Soundex,
transposed birth date, two of three date parts, shared surname part) still work, and Splink can run on the
tokens as it does on clear text. *What it reveals* to a holder of the tokens without the secret: which
records agree on which token (hence the match weights and clusters), and token frequencies (a very common
surname token is probably a very common surname); not the values. With the secret, any guessed value can be
confirmed, so the secret is as sensitive as the data. Rotate it per agreement; never reuse the person index's.

**Bloom-filter encodings** (:func:`bloom_encode`, optional, for fuzzy comparison of one field): the
character bigrams of a value are each hashed ``k`` times (HMAC-keyed) into a bit array; :func:`dice`
of two filters approximates the bigram similarity of the values, so typos still score close.
*What it reveals*: more than keyed tokens. Filters of one field are open to frequency and pattern-mining
attacks that recover common names; use them only with several fields combined per filter, a secret per
agreement, and the matching party bound by the agreement not to attempt re-identification.
"""
from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping

from transforms.identity_normalise import SET_SEPARATOR

HASH_FAMILY = {
    "given": "name", "given_canon": "name", "middle": "name", "middle_canon": "name", "sn": "name",
    "sn1": "name", "sn2": "name", "given_sdx": "sdx", "sn_sdx": "sdx", "dob": "dob", "dob_swap": "dob",
}
"""Tokens compared with each other (given name vs middle name, birth date vs the swapped birth date) share a
family, so the same value hashes alike under either token name. Every other token is its own family."""


def keyed_token(secret: bytes, family: str, value: str) -> str:
    """HMAC-SHA256 (hex) of ``family:value``; ``""`` stays ``""`` (unknown)."""
    if not value:
        return ""
    return hmac.new(secret, f"{family}:{value}".encode(), hashlib.sha256).hexdigest()


def keyed_tokens(tokens: Mapping[str, str], secret: bytes) -> dict[str, str]:
    """Every comparison token of one record as a keyed hash under ``secret`` (at least 32 bytes).

    Set tokens (names ending in ``_del``) are hashed variant by variant, each shortened to 16 hex digits
    (64 bits: ample for equality within one record pair), and joined again.
    """
    if len(secret) < 32:
        raise ValueError("a linkage secret must be at least 32 bytes")
    out = {}
    for name, value in tokens.items():
        family = HASH_FAMILY.get(name, name)
        if name.endswith("_del"):
            out[name] = SET_SEPARATOR.join(keyed_token(secret, family, v)[:16] for v in value.split(SET_SEPARATOR)
                                           if v)
        else:
            out[name] = keyed_token(secret, family, value)
    return out


class TokenKeyer:
    """:func:`keyed_tokens` under one secret for record after record: the same output, a fraction of the cost.

    The secret is keyed into HMAC-SHA256 once (each token then copies that state instead of keying it
    again), and the hashes of recently seen (token name, value) pairs, and of values hashed alone with
    :meth:`token` (the person index's blocking values), are remembered: names, birth years, sexes and
    Soundex codes recur from record to record, so most tokens of a record need no hashing at all. At most
    ``memo`` entries are kept (the memo is emptied when it fills): they are clear values, held in this
    process's memory as the records being linked are, and never written anywhere.
    """

    def __init__(self, secret: bytes, *, memo: int = 65536) -> None:
        if len(secret) < 32:
            raise ValueError("a linkage secret must be at least 32 bytes")
        self._keyed = hmac.new(secret, digestmod=hashlib.sha256)
        self._memo: dict[tuple[str, ...], str] = {}  # (token name, value) or (family, value, "")
        self._limit = memo

    def _hash(self, family: str, value: str) -> str:
        mac = self._keyed.copy()
        mac.update(f"{family}:{value}".encode())
        return mac.hexdigest()

    def token(self, family: str, value: str) -> str:
        """``keyed_token(secret, family, value)``, remembered like the tokens of :meth:`__call__`."""
        memo = self._memo
        hashed = memo.get((family, value, ""))
        if hashed is None:
            hashed = self._hash(family, value) if value else ""
            if len(memo) >= self._limit:
                memo.clear()
            memo[(family, value, "")] = hashed
        return hashed

    def __call__(self, tokens: Mapping[str, str]) -> dict[str, str]:
        """``keyed_tokens(tokens, secret)``."""
        out = {}
        memo = self._memo
        for name, value in tokens.items():
            hashed = memo.get((name, value))
            if hashed is None:
                if not value:
                    hashed = ""
                elif name.endswith("_del"):
                    family = HASH_FAMILY.get(name, name)
                    hashed = SET_SEPARATOR.join(self._hash(family, v)[:16] for v in value.split(SET_SEPARATOR) if v)
                else:
                    hashed = self._hash(HASH_FAMILY.get(name, name), value)
                if len(memo) >= self._limit:
                    memo.clear()
                memo[(name, value)] = hashed
            out[name] = hashed
        return out


def bloom_encode(value: str, secret: bytes, *, bits: int = 1024, hashes: int = 20) -> int:
    """A keyed Bloom filter of ``value``'s padded character bigrams, as an int bit set of ``bits`` bits."""
    padded = f"_{value}_"
    filter_ = 0
    for i in range(len(padded) - 1):
        gram = padded[i:i + 2].encode()
        first = int.from_bytes(hmac.new(secret, b"1" + gram, hashlib.sha256).digest()[:8], "big")
        second = int.from_bytes(hmac.new(secret, b"2" + gram, hashlib.sha256).digest()[:8], "big")
        for j in range(hashes):  # double hashing: position j = h1 + j * h2 (mod bits)
            filter_ |= 1 << ((first + j * second) % bits)
    return filter_


def dice(a: int, b: int) -> float:
    """Dice coefficient of two Bloom filters: ``2 |a & b| / (|a| + |b|)`` (1.0 for two empty filters)."""
    total = a.bit_count() + b.bit_count()
    return 1.0 if total == 0 else 2 * (a & b).bit_count() / total
