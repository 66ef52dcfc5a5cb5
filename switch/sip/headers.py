"""Header names and the immutable ordered header list of a message.

Names are case-insensitive and have compact forms (RFC 3261 section 7.3.3, 20); we keep
them in one canonical spelling so lookups are a dict access and serialisation is stable.
Unknown headers keep the spelling they arrived with.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator

from .grammar import TOKEN_CLASS, split_commas

_TOKEN_RE = re.compile(f"[{TOKEN_CLASS}]+")

_CANONICAL = [
    "Accept", "Accept-Contact", "Accept-Encoding", "Accept-Language", "Alert-Info", "Allow",
    "Allow-Events", "Authentication-Info", "Authorization", "Call-ID", "Call-Info", "Contact",
    "Content-Disposition", "Content-Encoding", "Content-Language", "Content-Length",
    "Content-Type", "CSeq", "Date", "Error-Info", "Event", "Expires", "Flow-Timer", "From",
    "Geolocation", "Geolocation-Routing", "History-Info", "Identity", "In-Reply-To",
    "Max-Forwards", "Min-Expires", "Min-SE", "MIME-Version", "Organization", "Path",
    "P-Asserted-Identity", "P-Preferred-Identity", "Priority", "Privacy", "Proxy-Authenticate",
    "Proxy-Authorization", "Proxy-Require", "RAck", "Reason", "Record-Route", "Refer-To",
    "Referred-By", "Reject-Contact", "Replaces", "Reply-To", "Request-Disposition", "Require",
    "Retry-After", "Route", "RSeq", "Server", "Service-Route", "Session-Expires", "SIP-ETag",
    "SIP-If-Match", "Subject", "Subscription-State", "Supported", "Timestamp", "To",
    "Unsupported", "User-Agent", "Via", "Warning", "WWW-Authenticate",
]
CANONICAL: dict[str, str] = {n.lower(): n for n in _CANONICAL}

# RFC 3261 section 7.3.3 and the registry of compact forms.
COMPACT: dict[str, str] = {
    "i": "Call-ID", "m": "Contact", "e": "Content-Encoding", "l": "Content-Length",
    "c": "Content-Type", "f": "From", "s": "Subject", "k": "Supported", "t": "To",
    "v": "Via", "o": "Event", "r": "Refer-To", "b": "Referred-By", "u": "Allow-Events",
    "x": "Session-Expires", "a": "Accept-Contact", "j": "Reject-Contact",
    "d": "Request-Disposition", "y": "Identity",
}

# Headers whose values contain commas that are not list separators.
NOT_A_LIST = frozenset(
    h.lower()
    for h in (
        "WWW-Authenticate", "Authorization", "Proxy-Authenticate", "Proxy-Authorization",
        "Authentication-Info", "Date", "Call-ID", "CSeq", "From", "To", "Subject",
        "User-Agent", "Server", "Organization", "Content-Length", "Content-Type",
        "Max-Forwards", "Expires", "Min-Expires", "Retry-After", "Timestamp", "Replaces",
        "Refer-To", "Referred-By", "Session-Expires", "Min-SE", "RAck", "RSeq",
        "Subscription-State", "Event", "SIP-ETag", "SIP-If-Match", "Identity",
    )
)

# Headers that may appear only once (RFC 3261 section 7.3.1 and 20).
SINGLE = frozenset(
    ("call-id", "cseq", "from", "to", "content-length", "max-forwards", "content-type",
     "expires", "min-expires")
)


# Spelling as received -> (canonical spelling, lookup key). Pre-filled with the usual
# spellings so the parser's hot path is one dict access per header line; unknown names are
# added while the cache is small, so hostile traffic cannot grow it without bound.
_NAME_CACHE: dict[str, tuple[str, str]] = {}
_NAME_CACHE_MAX = 4096


def _resolve(name: str) -> tuple[str, str]:
    low = name.lower()
    full = COMPACT.get(low) if len(low) == 1 else None
    if full is None:
        full = CANONICAL.get(low, name)
    return full, full.lower()


for _n in (*_CANONICAL, *COMPACT, *(c.upper() for c in COMPACT)):
    for _s in (_n, _n.lower(), _n.upper()):
        _NAME_CACHE[_s] = _resolve(_s)


def cached_name(name: str) -> tuple[str, str] | None:
    """The cache entry for a spelling already seen; every cached name is a valid token."""
    return _NAME_CACHE.get(name)


def name_and_key(name: str) -> tuple[str, str]:
    """(canonical spelling, lower-case lookup key) of a header name (RFC 3261 7.3.3)."""
    hit = _NAME_CACHE.get(name)
    if hit is not None:
        return hit
    hit = _resolve(name)
    if len(_NAME_CACHE) < _NAME_CACHE_MAX and _TOKEN_RE.fullmatch(name) is not None:
        _NAME_CACHE[name] = hit
    return hit


def canonical_name(name: str) -> str:
    return name_and_key(name)[0]


def header_key(name: str) -> str:
    hit = _NAME_CACHE.get(name)  # the usual case, without name_and_key's call
    return hit[1] if hit is not None else name_and_key(name)[1]


# The index maps a header key to its positions. Nearly every header occurs once, so its
# positions are one of these shared one-element tuples, not a list of its own: a parsed
# message kept for a call's lifetime holds no per-header index object (about 2.5 KB per
# held call with lists, measured with tracemalloc; issue 21).
SHARED_POSITIONS = 1024  # more than MAX_HEADER_LINES: a parsed message never misses
POSITION = tuple((i,) for i in range(SHARED_POSITIONS))
Positions = tuple[int, ...]


def at(i: int) -> Positions:
    """The positions tuple of a header seen once, at `i`."""
    return POSITION[i] if i < SHARED_POSITIONS else (i,)


class Headers:
    """An immutable ordered list of (name, value) with case-insensitive lookup."""

    __slots__ = ("_index", "_items")

    def __init__(self, items: Iterable[tuple[str, str]] = (), *, canonical: bool = False) -> None:
        # One pass: each name is looked up once for both its canonical spelling and its key.
        index: dict[str, Positions] = {}
        cache = _NAME_CACHE.get
        if canonical:
            self._items: tuple[tuple[str, str], ...] = tuple(items)
            for i, (n, _) in enumerate(self._items):
                hit = cache(n)
                key = hit[1] if hit is not None else header_key(n)
                positions = index.get(key)
                index[key] = at(i) if positions is None else (*positions, i)
        else:
            out: list[tuple[str, str]] = []
            for n, v in items:
                hit = cache(n)
                if hit is None:
                    hit = name_and_key(n)
                positions = index.get(hit[1])
                index[hit[1]] = at(len(out)) if positions is None else (*positions, len(out))
                out.append((hit[0], v))
            self._items = tuple(out)
        self._index = index

    @classmethod
    def _from_parsed(cls, items: tuple[tuple[str, str], ...],
                     index: dict[str, Positions]) -> Headers:
        """The parser's constructor: names already canonical, index already built."""
        self = cls.__new__(cls)
        self._items = items
        self._index = index
        return self

    def with_value_at(self, position: int, value: str) -> Headers:
        """A copy with the value of the header at `position` changed, name kept. The index
        is shared (positions and names do not move), so this costs one tuple copy: the hot
        path uses it to stamp `received` into a Via (RFC 3261 18.2.1)."""
        items = list(self._items)
        items[position] = (items[position][0], value)
        return Headers._from_parsed(tuple(items), self._index)

    def position(self, name: str) -> int | None:
        """Where the first `name` header is, or None."""
        idx = self._index.get(header_key(name))
        return idx[0] if idx else None

    def __iter__(self) -> Iterator[tuple[str, str]]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Headers) and self._items == other._items

    def __hash__(self) -> int:
        return hash(self._items)

    def __repr__(self) -> str:
        return f"Headers({list(self._items)!r})"

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and header_key(name) in self._index

    def items(self) -> tuple[tuple[str, str], ...]:
        return self._items

    def count(self, name: str) -> int:
        return len(self._index.get(header_key(name), ()))

    def get(self, name: str, default: str | None = None) -> str | None:
        """The first value of `name` as it arrived."""
        idx = self._index.get(header_key(name))
        return self._items[idx[0]][1] if idx else default

    def get_key(self, key: str) -> str | None:
        """`get` by lower-case canonical key ("call-id"), skipping the name lookup."""
        idx = self._index.get(key)
        return self._items[idx[0]][1] if idx else None

    def get_raw(self, name: str) -> list[str]:
        """Every header line's value for `name`, not split."""
        idx = self._index.get(header_key(name), ())
        return [self._items[i][1] for i in idx]

    def get_raw_key(self, key: str) -> list[str]:
        """`get_raw` by lower-case canonical key ("via"), skipping the name lookup."""
        items = self._items
        return [items[i][1] for i in self._index.get(key, ())]

    def get_all(self, name: str) -> list[str]:
        """Every value of `name`, comma-separated lists split (RFC 3261 section 7.3.1)."""
        key = header_key(name)
        values = [self._items[i][1] for i in self._index.get(key, ())]
        if key in NOT_A_LIST:
            return values
        out: list[str] = []
        for v in values:
            out.extend(split_commas(v))
        return out

    def add(self, name: str, value: str, *, first: bool = False) -> Headers:
        item = (canonical_name(name), value)
        items = (item, *self._items) if first else (*self._items, item)
        return Headers(items, canonical=True)

    def remove(self, name: str) -> Headers:
        key = header_key(name)
        return Headers((it for it in self._items if header_key(it[0]) != key), canonical=True)

    def replace(self, name: str, value: str) -> Headers:
        """Set `name` to one value, in the place of its first occurrence (or at the end)."""
        cname = canonical_name(name)
        key = cname.lower()
        out: list[tuple[str, str]] = []
        done = False
        for it in self._items:
            if header_key(it[0]) == key:
                if not done:
                    out.append((cname, value))
                    done = True
                continue
            out.append(it)
        if not done:
            out.append((cname, value))
        return Headers(out, canonical=True)

    def extend(self, items: Iterable[tuple[str, str]]) -> Headers:
        return Headers((*self._items, *((canonical_name(n), v) for n, v in items)), canonical=True)
