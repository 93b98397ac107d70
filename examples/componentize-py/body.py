"""Request bodies read the way daprd's protojson reads them (DiscardUnknown, AllowPartial).

Field names are accepted in camelCase (`resourceId`) and as proto names (`resource_id`);
unknown fields are skipped unread, so any well-formed JSON value there passes (`1e400` too);
a field given twice, by either name, is refused; `null` and an empty body give zero values;
an integer may be quoted. A refusal is a `BodyError` whose text the caller prefixes with
daprd's `failed deserializing HTTP body: `; the texts are those of the built-in component.
"""

import jsontext

JSON_WHITESPACE = " \n\t\r"


class BodyError(Exception):
    """A body daprd would refuse; `str(error)` says why, protojson-style."""


# The known fields: JSON name and proto name -> (proto name, JSON name).
FIELDS = {
    name: (proto, json_name)
    for json_name, proto in [
        ("resourceId", "resource_id"),
        ("lockOwner", "lock_owner"),
        ("expiryInSeconds", "expiry_in_seconds"),
        ("storeName", "store_name"),
    ]
    for name in (json_name, proto)
}


def lock_request(body):
    """`(resource_id, lock_owner, expiry_in_seconds)` of a try-lock body (bytes)."""
    fields = known_fields(body)
    string_field(fields, "store_name")
    return (
        string_field(fields, "resource_id"),
        string_field(fields, "lock_owner"),
        int32_field(fields, "expiry_in_seconds"),
    )


def unlock_request(body):
    """`(resource_id, lock_owner)` of an unlock body (bytes)."""
    fields = known_fields(body)
    string_field(fields, "store_name")
    return string_field(fields, "resource_id"), string_field(fields, "lock_owner")


def known_fields(body):
    """The values of the known fields of the body's JSON object, by proto name; an empty body
    and `null` have none."""
    if not body:
        return {}
    if body.lstrip(JSON_WHITESPACE.encode()).startswith(b"{"):
        return object_fields(body)
    try:
        value = jsontext.read(body)
    except jsontext.JsonError as e:
        raise syntax_error(e) from None
    if value is not None:
        raise syntax_error("unexpected token %s, want an object" % jsontext.show(value))
    return {}


def object_fields(body):
    """The known fields of a body that is an object; other members are only scanned."""
    fields, repeated = {}, []

    def member(key):
        if key not in FIELDS:
            return None
        proto = FIELDS[key][0]
        if proto in fields:
            repeated.append(proto)
            return None
        return lambda value: fields.__setitem__(proto, value)

    try:
        jsontext.read_members(body, member)
    except jsontext.JsonError as e:
        raise syntax_error(e) from None
    # Skipped strings were only scanned: check what protojson checks in every string.
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise syntax_error("invalid UTF-8 in string") from None
    escape = lone_surrogate(text)
    if escape is not None:
        raise syntax_error('invalid escape code "%s" in string' % escape.replace("\\", "\\\\"))
    if repeated:
        raise BodyError('proto: duplicate field "%s"' % repeated[0])
    return fields


def lone_surrogate(text):
    """The first `\\uXXXX` escape of a surrogate that is not the high half of a pair, in JSON
    text that is well formed; None when there is none."""
    i = 0
    while i < len(text):
        if text[i] != "\\":
            i += 1
            continue
        unit = escape_at(text, i)
        if unit is None:
            # Any other escape is two characters.
            i += 2
        elif 0xD800 <= unit <= 0xDBFF:
            low = escape_at(text, i + 6)
            if low is None or not 0xDC00 <= low <= 0xDFFF:
                return text[i : i + 6]
            i += 12
        elif 0xDC00 <= unit <= 0xDFFF:
            return text[i : i + 6]
        else:
            i += 6
    return None


def escape_at(text, i):
    """The code unit of the `\\uXXXX` escape at `i`, or None when there is none."""
    escape = text[i : i + 6]
    if len(escape) < 6 or not escape.startswith("\\u"):
        return None
    return int(escape[2:], 16)


def syntax_error(reason):
    """A body that is not JSON, or not an object."""
    return BodyError("proto: syntax error: %s" % reason)


def string_field(fields, proto):
    """A string field; absent or `null` is the empty string."""
    value = fields.get(proto)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise BodyError(
            "proto: invalid value for string field %s: %s"
            % (json_name(proto), jsontext.show(value))
        )
    return value


def json_name(proto):
    """The JSON (camelCase) name of a known field."""
    return FIELDS[proto][1]


def int32_field(fields, proto):
    """An int32 field: a number, or a quoted one, integral and in range; absent is 0."""
    value = fields.get(proto)
    if value is None:
        return 0
    number = value
    if isinstance(value, str):
        number = quoted_number(value)
    result = int32(number) if jsontext.is_number(number) else None
    if result is None:
        raise BodyError(
            "proto: invalid value for int32 field %s: %s"
            % (json_name(proto), jsontext.show(value))
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
