"""Caller number from SIP headers, by policy: P-Asserted-Identity from trusted peers, From.

:class:`CallerTrust` is the policy (``--caller-trust strict|trunk|open``) and
:func:`decide_caller` applies it; every decision says where the number came from
(:class:`~assistant.core.ports.CallerSource`), whether the peer was trusted
(:class:`~assistant.core.ports.PeerClass`) and why, in fixed words (never the number).

Pure functions, no SIP stack: the baresip adapter feeds them the header values it was
given and the source address of the INVITE. Header values come off the network, so every
parser here is total (never raises on malformed input; it answers "no number").
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from urllib.parse import unquote

from assistant.core.errors import ConfigError
from assistant.core.ports import CallerId, CallerSource, PeerClass

#: Characters RFC 3966 allows as visual separators inside a phone number.
_VISUAL_SEPARATORS = re.compile(r"[-.()\s]")
#: What we accept as a phone number once separators are gone.
_PHONE = re.compile(r"\+?[0-9]{2,20}")
#: User parts that mean "no number" (RFC 3323 anonymity and common carrier spellings).
_ANONYMOUS_USERS = frozenset({"anonymous", "unknown", "restricted", "unavailable", "private"})
_ANONYMOUS_HOSTS = frozenset({"anonymous.invalid"})


@dataclass(frozen=True)
class NameAddr:
    """One ``name-addr`` / ``addr-spec`` from a header: display name and URI."""

    display: str
    uri: str


def split_header_values(value: str) -> list[str]:
    """Split a comma-separated header value, ignoring commas in quotes and <...>."""
    parts: list[str] = []
    current: list[str] = []
    in_quotes = False
    in_angle = False
    escaped = False
    for ch in value:
        if escaped:
            current.append(ch)
            escaped = False
            continue
        if in_quotes and ch == "\\":
            current.append(ch)
            escaped = True
            continue
        if ch == '"' and not in_angle:
            in_quotes = not in_quotes
        elif ch == "<" and not in_quotes:
            in_angle = True
        elif ch == ">" and not in_quotes:
            in_angle = False
        elif ch == "," and not in_quotes and not in_angle:
            parts.append("".join(current).strip())
            current = []
            continue
        current.append(ch)
    parts.append("".join(current).strip())
    return [p for p in parts if p]


def parse_name_addr(value: str) -> NameAddr | None:
    """Parse ``"Name" <uri>;params``, ``Name <uri>`` or a bare ``uri;params``.

    Without angle brackets, RFC 3261 gives everything after the first ``;`` to the header
    (``;tag=...``), so the URI stops there.
    """
    text = value.strip()
    if not text:
        return None
    display = ""
    rest = text
    if rest.startswith('"'):
        out: list[str] = []
        i = 1
        while i < len(rest):
            ch = rest[i]
            if ch == "\\" and i + 1 < len(rest):
                out.append(rest[i + 1])
                i += 2
                continue
            if ch == '"':
                break
            out.append(ch)
            i += 1
        else:
            return None  # unterminated quote
        display = "".join(out).strip()
        rest = rest[i + 1 :].strip()
    lt = rest.find("<")
    if lt >= 0:
        gt = rest.find(">", lt + 1)
        if gt < 0:
            return None
        if not display:
            display = rest[:lt].strip()
        uri = rest[lt + 1 : gt].strip()
    else:
        if display:
            return None  # a quoted name must be followed by <uri>
        uri = rest.split(";", 1)[0].strip()
    if not uri:
        return None
    return NameAddr(display=display, uri=uri)


def number_from_uri(uri: str) -> str | None:
    """The phone number a ``sip:``/``sips:``/``tel:`` URI names, or ``None``.

    ``sip:+84912345678@host;user=phone`` and ``tel:+84-91-234-5678;phone-context=x`` both
    give ``+84912345678``. Anonymous URIs, empty user parts and user parts that are not a
    phone number (``sip:alice@host``) give ``None``.
    """
    text = uri.strip()
    scheme, sep, rest = text.partition(":")
    if not sep:
        return None
    scheme = scheme.lower()
    if scheme == "tel":
        user = rest.split(";", 1)[0]
        host = ""
    elif scheme in ("sip", "sips"):
        rest = rest.split("?", 1)[0]  # URI headers
        if "@" not in rest:
            return None  # sip:host, no user part
        user, _, hostpart = rest.rpartition("@")
        host = hostpart.split(";", 1)[0].split(":", 1)[0].strip("[]").lower()
        user = user.split(":", 1)[0]  # user:password
        user = user.split(";", 1)[0]  # telephone-subscriber parameters (;isub=, ;ext=)
    else:
        return None
    user = unquote(user).strip()
    if not user or user.lower() in _ANONYMOUS_USERS or host in _ANONYMOUS_HOSTS:
        return None
    number = _VISUAL_SEPARATORS.sub("", user)
    return number if _PHONE.fullmatch(number) else None


def number_from_header(value: str | None) -> str | None:
    """The first phone number among the name-addrs of a header value."""
    if not value:
        return None
    for part in split_header_values(value):
        addr = parse_name_addr(part)
        if addr is None:
            continue
        number = number_from_uri(addr.uri)
        if number is not None:
            return number
    return None


class TrustedPeers:
    """Addresses whose P-Asserted-Identity we believe: IPs or CIDR networks."""

    def __init__(self, peers: Iterable[str]) -> None:
        networks = []
        for peer in peers:
            try:
                networks.append(ipaddress.ip_network(peer.strip(), strict=False))
            except ValueError:
                raise ConfigError(
                    f"trusted peer {peer!r} is not an IP address or network "
                    "(host names are not accepted: the check compares source addresses)",
                    code="sip_trusted_peer_invalid",
                ) from None
        self._networks = tuple(networks)

    def __len__(self) -> int:
        return len(self._networks)

    def __repr__(self) -> str:
        return f"TrustedPeers({[str(n) for n in self._networks]!r})"

    def contains(self, address: str | None) -> bool:
        """True when ``address`` (an IP, no port) is one of the trusted peers."""
        if not address:
            return False
        try:
            ip = ipaddress.ip_address(address.strip().strip("[]"))
        except ValueError:
            return False
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        return any(ip.version == net.version and ip in net for net in self._networks)


def header(headers: Mapping[str, str], name: str) -> str | None:
    """A header value by case-insensitive name."""
    wanted = name.lower()
    for key, value in headers.items():
        if key.lower() == wanted:
            return value
    return None


class CallerTrust(StrEnum):
    """Whose word the box takes for the caller number (``--caller-trust``).

    * ``strict``: only P-Asserted-Identity sent by a trusted peer; anything else is treated as
      a withheld number (the caller hears why and the other ways);
    * ``trunk`` (default): P-Asserted-Identity from a trusted peer, else the From header (a
      claim the caller chose), with the reason logged;
    * ``open``: a lab softphone: P-Asserted-Identity from any peer, else From.
    """

    STRICT = "strict"
    TRUNK = "trunk"
    OPEN = "open"


@dataclass(frozen=True)
class CallerDecision:
    """The caller id of an INVITE and why (``reason`` is fixed words, never a number)."""

    caller: CallerId
    reason: str


def decide_caller(
    headers: Mapping[str, str],
    *,
    peer_uri: str | None,
    source_ip: str | None,
    trusted: TrustedPeers,
    policy: CallerTrust = CallerTrust.TRUNK,
) -> CallerDecision:
    """The caller number of an INVITE under ``policy`` (see :class:`CallerTrust`).

    ``peer_uri`` is the stack's parsed remote URI (the From URI of an inbound call), used when
    the From header itself was not exposed (for instance sent in compact form ``f:``).
    """
    peer_trusted = trusted.contains(source_ip)
    peer = PeerClass.TRUSTED if peer_trusted else PeerClass.UNTRUSTED
    asserted = number_from_header(header(headers, "P-Asserted-Identity"))
    if asserted is not None and (peer_trusted or policy is CallerTrust.OPEN):
        why = "trusted peer" if peer_trusted else "untrusted peer, caller-trust open"
        return CallerDecision(
            CallerId(asserted, CallerSource.PAI, peer), f"P-Asserted-Identity ({why})"
        )
    missing = "sent no usable P-Asserted-Identity" if peer_trusted else "peer not trusted"
    if policy is CallerTrust.STRICT:
        return CallerDecision(
            CallerId(None, CallerSource.NONE, peer),
            f"number withheld: {missing} (caller-trust strict)",
        )
    from_value = header(headers, "From")
    number = number_from_header(from_value) if from_value else None
    if number is None and from_value is None and peer_uri:
        number = number_from_uri(peer_uri)
    if number is not None:
        return CallerDecision(CallerId(number, CallerSource.FROM, peer), f"From header: {missing}")
    return CallerDecision(
        CallerId(None, CallerSource.NONE, peer), f"no number: {missing}, no usable From"
    )


def caller_id(
    headers: Mapping[str, str],
    *,
    peer_uri: str | None,
    source_ip: str | None,
    trusted: TrustedPeers,
) -> CallerId:
    """The caller number of an INVITE under the default policy (``trunk``)."""
    return decide_caller(headers, peer_uri=peer_uri, source_ip=source_ip, trusted=trusted).caller
