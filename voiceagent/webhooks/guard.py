"""The SSRF guard: a status webhook may only reach public addresses (unless WEBHOOK_ALLOW_PRIVATE).

A webhook URL comes from whoever may place a call, and the delivery runs inside the deployment's
network: without this check ``http://169.254.169.254/`` (cloud metadata) or ``http://redis:6379``
would be one POST away.  The host is resolved and *every* address it resolves to must be public
(IPv4 and IPv6; a v4-mapped IPv6 address is judged as the IPv4 address it carries).  The check
runs when the call is placed and again at each delivery (DNS may change in between), and the
delivery connects to the address checked here, not to a second lookup's.
"""
from __future__ import annotations

import socket
from ipaddress import IPv4Address, IPv6Address, ip_address
from typing import List, Tuple, Union
from urllib.parse import urlsplit

IP = Union[IPv4Address, IPv6Address]


class TargetRefused(ValueError):
    """The URL is not one a webhook may reach (final: retrying cannot help)."""


class Unresolvable(OSError):
    """The host does not resolve now (may be transient: a delivery retries)."""


def refusal(ip: IP) -> str:
    """Why ``ip`` is not public, or '' when it is."""
    if isinstance(ip, IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    for name, bad in (("loopback", ip.is_loopback), ("unspecified", ip.is_unspecified),
                      ("link-local", ip.is_link_local), ("multicast", ip.is_multicast),
                      ("private", ip.is_private), ("reserved", ip.is_reserved)):
        if bad:
            return name
    if not ip.is_global:
        return "non-global"
    return ""


def split(url: str) -> Tuple[str, str, int]:
    """(scheme, host, port) of an http(s) URL; TargetRefused otherwise."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise TargetRefused("not a valid URL") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise TargetRefused("must be an http or https URL with a host")
    return parts.scheme, parts.hostname, port or (443 if parts.scheme == "https" else 80)


def checked_addresses(url: str, *, allow_private: bool) -> List[str]:
    """The addresses ``url``'s host resolves to, all allowed; raises TargetRefused or Unresolvable."""
    _scheme, host, port = split(url)
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise Unresolvable(f"{host} does not resolve: {exc}") from None
    addrs: List[str] = []
    for *_rest, sockaddr in infos:
        a = str(sockaddr[0]).split("%", 1)[0]
        if a not in addrs:
            addrs.append(a)
    if not addrs:
        raise Unresolvable(f"{host} resolves to no address")
    if not allow_private:
        for a in addrs:
            why = refusal(ip_address(a))
            if why:
                raise TargetRefused(f"{host} resolves to {a}, a {why} address (WEBHOOK_ALLOW_PRIVATE is off)")
    return addrs


def check_target(url: str, *, allow_private: bool) -> None:
    """At request time: refuse a URL a delivery would refuse.  A host that does not resolve now is
    refused too (a typo is likelier than a name that appears later)."""
    try:
        checked_addresses(url, allow_private=allow_private)
    except Unresolvable as exc:
        raise TargetRefused(str(exc)) from None
