"""This component's own rule, on top of Dapr's: which lock owners each lock store accepts.

The host passes a component no configuration of its own (only `settings`, for the body
bound), so the allow-list is this constant: to change it, edit it and rebuild. A store that
is not listed accepts every owner, exactly like the built-in component.
"""

# Lock store name -> the prefixes its `lockOwner`s must start with (any one of them).
OWNER_PREFIXES = {
    "teamstore": ("team-a/",),
}


def refusal(store_name, lock_owner):
    """Why `store_name` refuses `lock_owner`, or None when it accepts it."""
    prefixes = OWNER_PREFIXES.get(store_name)
    if prefixes is None or lock_owner.startswith(prefixes):
        return None
    return "LockOwner %s is not allowed in lock store %s: owners must start with %s" % (
        lock_owner,
        store_name,
        " or ".join(prefixes),
    )
