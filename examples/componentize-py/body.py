"""Request bodies read the way daprd's protojson reads them (DiscardUnknown, AllowPartial).

Field names are accepted in camelCase (`resourceId`) and as proto names (`resource_id`);
unknown fields are ignored; `null` and an empty body give zero values; an integer may be
quoted. A refusal is a `BodyError` whose text the caller prefixes with daprd's
`failed deserializing HTTP body: `; the texts are those of the built-in component.
"""

import jsontext

JSON_WHITESPACE = " \n\t\r"


class BodyError(Exception):
    """A body daprd would refuse; `str(error)` says why, protojson-style."""


def lock_request(body):
    """`(resource_id, lock_owner, expiry_in_seconds)` of a try-lock body (bytes)."""
    fields = top_object(body)
    string_field(fields, "storeName", "store_name")
    return (
        string_field(fields, "resourceId", "resource_id"),
        string_field(fields, "lockOwner", "lock_owner"),
        int32_field(fields, "expiryInSeconds", "expiry_in_seconds"),
    )


def unlock_request(body):
    """`(resource_id, lock_owner)` of an unlock body (bytes)."""
    fields = top_object(body)
    string_field(fields, "storeName", "store_name")
    return (
        string_field(fields, "resourceId", "resource_id"),
        string_field(fields, "lockOwner", "lock_owner"),
    )


def top_object(body):
    """The body's JSON object; an empty body and `null` are an empty object."""
    if not body:
        return {}
    try:
        value = jsontext.read(body)
    except jsontext.JsonError as e:
        raise BodyError("proto: syntax error: %s" % e) from None
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise BodyError(
            "proto: syntax error: unexpected token %s, want an object" % jsontext.show(value)
        )
    return value


def field(fields, json_name, proto_name):
    """A field by its JSON name or its proto name (absent: None); both at once is refused."""
    if json_name in fields and proto_name in fields:
        raise BodyError('proto: duplicate field "%s"' % proto_name)
    return fields.get(json_name, fields.get(proto_name))


def string_field(fields, json_name, proto_name):
    """A string field; absent or `null` is the empty string."""
    value = field(fields, json_name, proto_name)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise BodyError(
            "proto: invalid value for string field %s: %s" % (json_name, jsontext.show(value))
        )
    return value


def int32_field(fields, json_name, proto_name):
    """An int32 field: a number, or a quoted one, integral and in range; absent is 0."""
    value = field(fields, json_name, proto_name)
    if value is None:
        return 0
    number = value
    if isinstance(value, str):
        number = quoted_number(value)
    result = int32(number) if jsontext.is_number(number) else None
    if result is None:
        raise BodyError(
            "proto: invalid value for int32 field %s: %s" % (json_name, jsontext.show(value))
        )
    return result


def quoted_number(text):
    """The number a quoted value holds, or None when it holds anything else."""
    if not text or text[0] in JSON_WHITESPACE or text[-1] in JSON_WHITESPACE:
        return None
    try:
        value = jsontext.read(text.encode("utf-8"))
    except jsontext.JsonError:
        return None
    return value if jsontext.is_number(value) else None


def int32(number):
    """`number` as an int32 when it is integral and in range (15, 1.5e1, 15.0), else None."""
    if isinstance(number, float):
        if not number.is_integer():
            return None
        number = int(number)
    return number if jsontext.I32_MIN <= number <= jsontext.I32_MAX else None
