"""Access rules, enforced here and nowhere else: who may do an action, and on which documents."""

from typing import Literal

from api.deps import Principal
from api.problems import Problem, unauthorized
from documents.collections import Rules

Action = Literal["list", "read", "create", "update", "delete"]


def caller_id(principal: Principal | None) -> str | None:
    """The id written to `_owner` and matched by the `owner` grant."""
    return principal.id if principal is not None else None


def _grants_fully(grant: str, principal: Principal | None) -> bool:
    if grant == "public":
        return True
    if principal is None:
        return False
    if grant == "authenticated":
        return True
    return grant.startswith("role:") and grant.removeprefix("role:") in principal.roles


def rule_filter(rules: Rules, action: Action, principal: Principal | None) -> dict | None:
    """The filter that narrows `action` to the documents the caller may touch, or None if none.

    `{}` admits every document; `{"_owner": id}` only the caller's own.
    """
    if principal is not None and principal.is_admin:
        return {}
    grants: list[str] = getattr(rules, action)
    if any(_grants_fully(grant, principal) for grant in grants):
        return {}
    if "owner" in grants and principal is not None:
        # Creating is never narrowed: whoever creates a document becomes its owner.
        return {} if action == "create" else {"_owner": caller_id(principal)}
    return None


def require(rules: Rules, action: Action, principal: Principal | None) -> dict:
    """rule_filter, or the refusal: 401 for an anonymous caller, 403 for a signed-in one."""
    narrowing = rule_filter(rules, action, principal)
    if narrowing is None:
        if principal is None:
            raise unauthorized("Authentication required")
        raise Problem(403, f"You may not {action} in this collection")
    return narrowing


def admits(narrowing: dict | None, document: dict) -> bool:
    """Whether a stored document falls inside a rule filter from `rule_filter`."""
    if narrowing is None:
        return False
    return all(document.get(field) == value for field, value in narrowing.items())
