"""Apply and check the hub's ACLs (:mod:`wijkhub.streams.access`) on any cluster.

``apply`` makes the cluster hold exactly the defined grants for the hub's
principals: it creates the missing ones and removes those no longer defined.
``check`` reports drift either way, so a grant added by hand is as visible as
one that went missing. Both run as the administrator principal.
"""

from __future__ import annotations

import time

from kafka.admin import (
    ACL,
    ACLFilter,
    ACLOperation,
    ACLPermissionType,
    ACLResourcePatternType,
    KafkaAdminClient,
    ResourcePattern,
    ResourcePatternFilter,
    ResourceType,
)

from wijkhub.settings import Settings
from wijkhub.streams.access import Grant, Pattern, Resource, grants

Key = tuple[str, str, str, str, str, str]  # principal, type, name, pattern, operation, permission

_TYPES = {Resource.TOPIC: ResourceType.TOPIC, Resource.GROUP: ResourceType.GROUP}
_PATTERNS = {Pattern.LITERAL: ACLResourcePatternType.LITERAL,
             Pattern.PREFIXED: ACLResourcePatternType.PREFIXED}  # fmt: skip


def principal(settings: Settings, service: str) -> str:
    """The broker principal of a service (``*``: every principal)."""
    return "User:*" if service == "*" else f"User:{settings.kafka_principal_prefix}{service}"


def desired(settings: Settings) -> dict[Key, ACL]:
    """Every defined grant as the ACL the cluster must hold, by a comparable key."""
    found = {}
    for g in grants(settings.topic_prefix, settings.app_id):
        acl = _acl(settings, g)
        found[_key(acl)] = acl
    return found


def _acl(settings: Settings, g: Grant) -> ACL:
    permission = ACLPermissionType.DENY if g.deny else ACLPermissionType.ALLOW
    pattern = ResourcePattern(_TYPES[g.resource], g.name, _PATTERNS[g.pattern])
    return ACL(principal(settings, g.principal), "*", ACLOperation[g.operation], permission,
               pattern)  # fmt: skip


def _key(acl: ACL) -> Key:
    p = acl.resource_pattern
    return (acl.principal, p.resource_type.name, p.resource_name, p.pattern_type.name,
            acl.operation.name, acl.permission_type.name)  # fmt: skip


def actual(admin: KafkaAdminClient, settings: Settings) -> dict[Key, ACL]:
    """Every ACL on the cluster that reaches this deployment's resources (those its grants
    name), whoever it is for: an exact grant, a ``*`` wildcard, or a prefix that covers one.
    Another tenant's or test run's grants on their own resources are not this deployment's
    to judge; a grant by hand on one of its topics is, for any principal."""
    everything = ACLFilter(None, None, ACLOperation.ANY, ACLPermissionType.ANY,
                           ResourcePatternFilter(ResourceType.ANY, None,
                                                 ACLResourcePatternType.ANY))  # fmt: skip
    acls, error = admin.describe_acls(everything)
    if error is not None and error.errno != 0:
        raise RuntimeError(f"describing ACLs failed: {error}")
    resources = {k[1:4] for k in desired(settings)}  # (type, name, pattern)
    return {_key(a): a for a in acls if _reaches(_key(a), resources)}


def _reaches(key: Key, resources: set[tuple[str, str, str]]) -> bool:
    """Whether an ACL grants (or denies) something on one of the deployment's own topics or
    groups: exactly, by the ``*`` wildcard, or by a prefix that covers its name. A prefix
    resource of the deployment (its internal topics) counts only when named exactly: a
    deployment whose app id extends this one's (a test run's, a demo's) is not this one's."""
    kind, name, pattern = key[1:4]
    for r_kind, r_name, r_pattern in resources:
        if r_kind != kind:
            continue
        if r_pattern == "PREFIXED":
            if (name, pattern) == (r_name, r_pattern):
                return True
        elif (pattern == "LITERAL" and name in (r_name, "*")) or (
            pattern == "PREFIXED" and r_name.startswith(name)
        ):
            return True
    return False


def drift(admin: KafkaAdminClient, settings: Settings) -> list[str]:
    """Missing and undefined ACLs, one line each; empty: the cluster matches."""
    want, have = desired(settings), actual(admin, settings)
    lines = [f"missing: {_describe(k)}" for k in sorted(want.keys() - have.keys())]
    return lines + [f"not defined: {_describe(k)}" for k in sorted(have.keys() - want.keys())]


def apply(
    admin: KafkaAdminClient, settings: Settings, settle_seconds: float = 15.0
) -> tuple[int, int]:
    """Create the missing ACLs and delete the undefined ones: (created, deleted).

    Returns once the broker describes exactly the defined ACLs (they reach its authorizer
    through the metadata log a moment after the request), so a service started right
    after is not refused; :class:`RuntimeError` if that takes over ``settle_seconds``.
    """
    want, have = desired(settings), actual(admin, settings)
    missing = [want[k] for k in sorted(want.keys() - have.keys())]
    extra = [have[k] for k in sorted(have.keys() - want.keys())]
    if missing:
        result = admin.create_acls(missing)
        if result["failed"]:
            raise RuntimeError(f"creating ACLs failed: {result['failed'][:3]}")
    if extra:
        filters = [ACLFilter(a.principal, a.host, a.operation, a.permission_type,
                             ResourcePatternFilter(a.resource_pattern.resource_type,
                                                   a.resource_pattern.resource_name,
                                                   a.resource_pattern.pattern_type))
                   for a in extra]  # fmt: skip
        admin.delete_acls(filters)
    deadline = time.monotonic() + settle_seconds
    while (missing or extra) and drift(admin, settings):
        if time.monotonic() > deadline:
            raise RuntimeError(f"ACLs not in effect after {settle_seconds:g} s")
        time.sleep(0.2)
    return len(missing), len(extra)


def _describe(key: Key) -> str:
    who, kind, name, pattern, operation, permission = key
    star = "*" if pattern == "PREFIXED" else ""
    return f"{who} {permission} {operation} on {kind.lower()} {name}{star}"
