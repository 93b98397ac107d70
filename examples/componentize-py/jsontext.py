"""JSON text read, and values written, the way the built-in Rust component does it.

The built-in component parses request bodies with serde_json. To answer every request byte
for byte as it does, malformed JSON must be refused with the same reason at the same line
and column, numbers must become the same values (serde_json's own float arithmetic, not
Python's correctly rounded one), and a value quoted in an error message must be written the
same way (keys sorted, floats in its shortest form with `e+N`/`e-N` outside 1e-5..1e16).

`read(text)` gives None, bool, int, float, str, list or dict; `read_members(text, member)`
reads a top-level object member by member, skipping the values it is not asked for (as
serde_json skips ignored fields: scanned, not converted); `show(value)` writes a value back.
"""

import json
import math
import re

# serde_json's reasons (its ErrorCode texts).
EOF_LIST = "EOF while parsing a list"
EOF_OBJECT = "EOF while parsing an object"
EOF_STRING = "EOF while parsing a string"
EOF_VALUE = "EOF while parsing a value"
EXPECTED_COLON = "expected `:`"
EXPECTED_LIST_COMMA_OR_END = "expected `,` or `]`"
EXPECTED_OBJECT_COMMA_OR_END = "expected `,` or `}`"
EXPECTED_IDENT = "expected ident"
EXPECTED_VALUE = "expected value"
INVALID_ESCAPE = "invalid escape"
INVALID_NUMBER = "invalid number"
NUMBER_OUT_OF_RANGE = "number out of range"
INVALID_CODE_POINT = "invalid unicode code point"
CONTROL_CHARACTER = "control character (\\u0000-\\u001F) found while parsing a string"
KEY_MUST_BE_A_STRING = "key must be a string"
LONE_SURROGATE = "lone leading surrogate in hex escape"
TRAILING_COMMA = "trailing comma"
TRAILING_CHARACTERS = "trailing characters"
END_OF_HEX_ESCAPE = "unexpected end of hex escape"
RECURSION_LIMIT = "recursion limit exceeded"

U64_MAX = (1 << 64) - 1
I32_MAX = (1 << 31) - 1
I32_MIN = -(1 << 31)
# Nesting depth at which serde_json gives up (its remaining_depth starts at 128).
MAX_DEPTH = 128
WHITESPACE = b" \n\t\r"
DIGITS = b"0123456789"
HEX_DIGITS = b"0123456789abcdefABCDEF"
SIMPLE_ESCAPES = {
    ord('"'): b'"',
    ord("\\"): b"\\",
    ord("/"): b"/",
    ord("b"): b"\b",
    ord("f"): b"\f",
    ord("n"): b"\n",
    ord("r"): b"\r",
    ord("t"): b"\t",
}
# The words JSON has, by first byte: the rest of the word and its value.
IDENTS = {ord("n"): (b"ull", None), ord("t"): (b"rue", True), ord("f"): (b"alse", False)}
POW10 = [float("1e%d" % e) for e in range(309)]
# The first byte a string stops at: its end, an escape, or a control character.
STRING_STOP = re.compile(rb'["\\\x00-\x1f]')


class JsonError(Exception):
    """Malformed JSON text; `str(error)` is serde_json's `<reason> at line L column C`."""


class Reader:
    """A cursor over the bytes of one JSON text."""

    def __init__(self, data):
        self.data = data
        self.i = 0
        self.depth = 0

    def position(self, index):
        """Line (from 1) and column (bytes before `index` on its line) of byte `index`."""
        start_of_line = self.data.rfind(b"\n", 0, index) + 1
        return 1 + self.data.count(b"\n", 0, start_of_line), index - start_of_line

    def error(self, reason, back=0):
        """An error at the last byte read (serde_json's `error`), `back` bytes earlier."""
        line, column = self.position(self.i)
        return JsonError("%s at line %d column %d" % (reason, line, max(0, column - back)))

    def peek_error(self, reason):
        """An error at the next byte (serde_json's `peek_error`)."""
        line, column = self.position(min(len(self.data), self.i + 1))
        return JsonError("%s at line %d column %d" % (reason, line, column))

    def peek(self):
        return self.data[self.i] if self.i < len(self.data) else None

    def peek_or_null(self):
        return self.data[self.i] if self.i < len(self.data) else 0

    def next_byte(self):
        byte = self.peek()
        if byte is not None:
            self.i += 1
        return byte

    def skip_whitespace(self):
        while self.i < len(self.data) and self.data[self.i] in WHITESPACE:
            self.i += 1
        return self.peek()

    def value(self):
        first = self.skip_whitespace()
        if first is None:
            raise self.peek_error(EOF_VALUE)
        if first in IDENTS:
            self.i += 1
            rest, result = IDENTS[first]
            self.ident(rest)
            return result
        if first == ord("-"):
            self.i += 1
            return self.integer(False)
        if first in DIGITS:
            return self.integer(True)
        if first == ord('"'):
            self.i += 1
            return self.string()
        if first in b"[{":
            self.depth += 1
            if self.depth == MAX_DEPTH:
                raise self.peek_error(RECURSION_LIMIT)
            self.i += 1
            result = self.array() if first == ord("[") else self.object()
            self.depth -= 1
            return result
        raise self.peek_error(EXPECTED_VALUE)

    def ident(self, rest):
        for expected in rest:
            byte = self.next_byte()
            if byte is None:
                raise self.error(EOF_VALUE)
            if byte != expected:
                raise self.error(EXPECTED_IDENT)

    def next_element(self, close, eof, comma_or_end, first):
        """The first byte of the next element of a list or an object (after its comma, unless
        it is the first), or None once the closing byte `close` has been read."""
        byte = self.skip_whitespace()
        if byte is None:
            raise self.peek_error(eof)
        if byte == close:
            self.i += 1
            return None
        if not first:
            if byte != ord(","):
                raise self.peek_error(comma_or_end)
            self.i += 1
            byte = self.skip_whitespace()
            if byte == close:
                raise self.peek_error(TRAILING_COMMA)
            if byte is None:
                raise self.peek_error(EOF_VALUE)
        return byte

    def array(self):
        items = []
        while self.next_element(ord("]"), EOF_LIST, EXPECTED_LIST_COMMA_OR_END, not items) is not None:
            items.append(self.value())
        return items

    def object(self, member=None):
        """The rest of an object whose `{` has been read, as a dict; with `member`, only the
        members for which `member(key)` gives a function are read (it gets the value) and the
        others are skipped (`skip`), and the dict stays empty."""
        fields = {}
        first = True
        while True:
            byte = self.next_element(ord("}"), EOF_OBJECT, EXPECTED_OBJECT_COMMA_OR_END, first)
            if byte is None:
                return fields
            if byte != ord('"'):
                raise self.peek_error(KEY_MUST_BE_A_STRING)
            first = False
            self.i += 1
            key = self.string()
            self.member_colon()
            if member is None:
                fields[key] = self.value()
                continue
            take = member(key)
            if take is None:
                self.skip()
            else:
                take(self.value())

    def member_colon(self):
        """Reads the `:` between a member's key and its value."""
        self.expect_byte(":", EOF_OBJECT, EXPECTED_COLON)

    def expect_byte(self, expected, eof, unexpected):
        """Reads the byte `expected` after whitespace; the error `eof` at the end of the
        input, `unexpected` at another byte."""
        byte = self.skip_whitespace()
        if byte is None:
            raise self.peek_error(eof)
        if byte != ord(expected):
            raise self.peek_error(unexpected)
        self.i += 1

    def skip(self):
        """Scans one value without reading it, as serde_json skips an ignored member: numbers
        are not converted (any size passes), strings not decoded, nesting not limited; and
        some errors differ from `value`'s."""
        open_frames = []
        enclosing = None
        while True:
            byte = self.skip_whitespace()
            if byte is None:
                raise self.peek_error(EOF_VALUE)
            frame = None
            if byte in IDENTS:
                self.i += 1
                self.ident(IDENTS[byte][0])
            elif byte == ord("-"):
                self.i += 1
                self.skip_number()
            elif byte in DIGITS:
                self.skip_number()
            elif byte == ord('"'):
                self.i += 1
                self.skip_string()
            elif byte in b"[{":
                if enclosing is not None:
                    open_frames.append(enclosing)
                    enclosing = None
                self.i += 1
                frame = byte
            else:
                raise self.peek_error(EXPECTED_VALUE)
            accept_comma = frame is None
            if frame is None:
                if enclosing is not None:
                    frame, enclosing = enclosing, None
                elif open_frames:
                    frame = open_frames.pop()
                else:
                    return
            while True:
                byte = self.skip_whitespace()
                if byte == ord(",") and accept_comma:
                    self.i += 1
                    break
                if byte is None:
                    raise self.peek_error(EOF_LIST if frame == ord("[") else EOF_OBJECT)
                if byte != (ord("]") if frame == ord("[") else ord("}")):
                    if accept_comma:
                        raise self.peek_error(
                            EXPECTED_LIST_COMMA_OR_END
                            if frame == ord("[")
                            else EXPECTED_OBJECT_COMMA_OR_END
                        )
                    break
                self.i += 1
                if not open_frames:
                    return
                frame = open_frames.pop()
                accept_comma = True
            if frame == ord("{"):
                self.expect_byte('"', EOF_OBJECT, KEY_MUST_BE_A_STRING)
                self.skip_string()
                self.member_colon()
            enclosing = frame

    def skip_number(self):
        """Scans a number (after its `-`) without converting it."""
        byte = self.next_byte()
        if byte == ord("0"):
            if self.peek_or_null() in DIGITS:
                raise self.peek_error(INVALID_NUMBER)
        elif byte is not None and byte in DIGITS:
            while self.peek_or_null() in DIGITS:
                self.i += 1
        else:
            raise self.error(INVALID_NUMBER)
        if self.peek_or_null() == ord("."):
            self.i += 1
            if self.peek_or_null() not in DIGITS:
                raise self.peek_error(INVALID_NUMBER)
            while self.peek_or_null() in DIGITS:
                self.i += 1
        if self.peek_or_null() in b"eE":
            self.i += 1
            if self.peek_or_null() in b"+-":
                self.i += 1
            byte = self.next_byte()
            if byte is None or byte not in DIGITS:
                raise self.error(INVALID_NUMBER)
            while self.peek_or_null() in DIGITS:
                self.i += 1

    def string(self):
        """The rest of a string whose opening quote has been read."""
        data = self.data
        out = bytearray()
        while True:
            stop = STRING_STOP.search(data, self.i)
            if stop is None:
                self.i = len(data)
                raise self.error(EOF_STRING)
            at = stop.start()
            out += data[self.i : at]
            self.i = at + 1
            byte = data[at]
            if byte == ord('"'):
                try:
                    return out.decode("utf-8")
                except UnicodeDecodeError as e:
                    raise self.error(INVALID_CODE_POINT, back=len(out) - e.start) from None
            if byte != ord("\\"):
                raise self.error(CONTROL_CHARACTER)
            self.escape(out)

    def escape(self, out):
        byte = self.next_byte()
        if byte is None:
            raise self.error(EOF_STRING)
        if byte in SIMPLE_ESCAPES:
            out += SIMPLE_ESCAPES[byte]
            return
        if byte != ord("u"):
            raise self.error(INVALID_ESCAPE)
        unit = self.hex_escape()
        if 0xDC00 <= unit <= 0xDFFF:
            raise self.error(LONE_SURROGATE)
        if not 0xD800 <= unit <= 0xDBFF:
            out += chr(unit).encode("utf-8")
            return
        for expected in b"\\u":
            byte = self.peek()
            if byte is None:
                raise self.error(EOF_STRING)
            self.i += 1
            if byte != expected:
                raise self.error(END_OF_HEX_ESCAPE)
        low = self.hex_escape()
        if not 0xDC00 <= low <= 0xDFFF:
            raise self.error(LONE_SURROGATE)
        out += chr(0x10000 + ((unit - 0xD800) << 10) + (low - 0xDC00)).encode("utf-8")

    def skip_string(self):
        """Scans the rest of a string without decoding it: escapes are checked for form only
        (a lone surrogate passes), and the bytes are not checked to be UTF-8."""
        while True:
            stop = STRING_STOP.search(self.data, self.i)
            if stop is None:
                self.i = len(self.data)
                raise self.error(EOF_STRING)
            at = stop.start()
            byte = self.data[at]
            if byte == ord('"'):
                self.i = at + 1
                return
            if byte != ord("\\"):
                self.i = at
                raise self.error(CONTROL_CHARACTER)
            self.i = at + 1
            escape = self.next_byte()
            if escape is None:
                raise self.error(EOF_STRING)
            if escape == ord("u"):
                self.hex_escape()
            elif escape not in SIMPLE_ESCAPES:
                raise self.error(INVALID_ESCAPE)

    def hex_escape(self):
        digits = self.data[self.i : self.i + 4]
        if len(digits) < 4:
            self.i = len(self.data)
            raise self.error(EOF_STRING)
        self.i += 4
        if any(d not in HEX_DIGITS for d in digits):
            raise self.error(INVALID_ESCAPE)
        return int(digits, 16)

    def integer(self, positive):
        byte = self.next_byte()
        if byte is None:
            raise self.error(EOF_VALUE)
        if byte == ord("0"):
            if self.peek_or_null() in DIGITS:
                raise self.peek_error(INVALID_NUMBER)
            return self.number(positive, 0)
        if byte not in DIGITS:
            raise self.error(INVALID_NUMBER)
        significand = byte - ord("0")
        while True:
            byte = self.peek_or_null()
            if byte not in DIGITS:
                return self.number(positive, significand)
            if significand * 10 + (byte - ord("0")) > U64_MAX:
                return self.long_integer(positive, significand)
            self.i += 1
            significand = significand * 10 + (byte - ord("0"))

    def number(self, positive, significand):
        byte = self.peek_or_null()
        if byte == ord("."):
            return self.decimal(positive, significand, 0)
        if byte in b"eE":
            return self.exponent(positive, significand, 0)
        if positive:
            return significand
        if significand == 0:
            return -0.0
        if significand <= 1 << 63:
            return -significand
        return -float(significand)

    def long_integer(self, positive, significand):
        """An integer past u64: its further digits only scale it."""
        exponent = 0
        while True:
            byte = self.peek_or_null()
            if byte in DIGITS:
                self.i += 1
                exponent += 1
            elif byte == ord("."):
                return self.decimal(positive, significand, exponent)
            elif byte in b"eE":
                return self.exponent(positive, significand, exponent)
            else:
                return self.from_parts(positive, significand, exponent)

    def decimal(self, positive, significand, exponent):
        self.i += 1
        fraction_digits = 0
        while self.peek_or_null() in DIGITS:
            digit = self.data[self.i] - ord("0")
            if significand * 10 + digit > U64_MAX:
                # Further digits are ignored.
                while self.peek_or_null() in DIGITS:
                    self.i += 1
                exponent -= fraction_digits
                if self.peek_or_null() in b"eE":
                    return self.exponent(positive, significand, exponent)
                return self.from_parts(positive, significand, exponent)
            self.i += 1
            significand = significand * 10 + digit
            fraction_digits += 1
        if fraction_digits == 0:
            raise self.peek_error(INVALID_NUMBER if self.peek() is not None else EOF_VALUE)
        exponent -= fraction_digits
        if self.peek_or_null() in b"eE":
            return self.exponent(positive, significand, exponent)
        return self.from_parts(positive, significand, exponent)

    def exponent(self, positive, significand, start):
        self.i += 1
        positive_exponent = True
        if self.peek_or_null() in b"+-":
            positive_exponent = self.data[self.i] == ord("+")
            self.i += 1
        byte = self.next_byte()
        if byte is None:
            raise self.error(EOF_VALUE)
        if byte not in DIGITS:
            raise self.error(INVALID_NUMBER)
        exponent = byte - ord("0")
        while self.peek_or_null() in DIGITS:
            digit = self.data[self.i] - ord("0")
            self.i += 1
            if exponent * 10 + digit > I32_MAX:
                if significand != 0 and positive_exponent:
                    raise self.error(NUMBER_OUT_OF_RANGE)
                while self.peek_or_null() in DIGITS:
                    self.i += 1
                return 0.0 if positive else -0.0
            exponent = exponent * 10 + digit
        final = start + exponent if positive_exponent else start - exponent
        return self.from_parts(positive, significand, max(I32_MIN, min(I32_MAX, final)))

    def from_parts(self, positive, significand, exponent):
        """serde_json's float arithmetic: the significand scaled by powers of ten."""
        value = float(significand)
        while True:
            if abs(exponent) < len(POW10):
                if exponent >= 0:
                    value *= POW10[exponent]
                    if math.isinf(value):
                        raise self.error(NUMBER_OUT_OF_RANGE)
                else:
                    value /= POW10[-exponent]
                break
            if value == 0.0:
                break
            if exponent >= 0:
                raise self.error(NUMBER_OUT_OF_RANGE)
            value /= 1e308
            exponent += 308
        return value if positive else -value

    def end(self):
        if self.skip_whitespace() is not None:
            raise self.peek_error(TRAILING_CHARACTERS)


def read(data):
    """The value of the JSON text `data` (bytes); raises JsonError when it is malformed."""
    reader = Reader(data)
    value = reader.value()
    reader.end()
    return value


def read_members(data, member):
    """Reads the JSON text `data` (bytes), an object, member by member: `member(key)` gives a
    function that gets the member's value, or None to skip the value unread (`Reader.skip`).
    Raises JsonError when the text is malformed; the caller has checked that its first
    non-whitespace byte is `{`."""
    reader = Reader(data)
    reader.skip_whitespace()
    reader.i += 1
    reader.depth = 1
    reader.object(member)
    reader.end()


def is_number(value):
    """Whether `value` is a JSON number (a bool is not)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def show(value):
    """`value` as compact JSON, as the Rust component quotes it in error messages."""
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return show_float(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list):
        return "[" + ",".join(show(item) for item in value) + "]"
    return "{" + ",".join(show(k) + ":" + show(value[k]) for k in sorted(value)) + "}"


def show_float(value):
    """A finite float in its shortest digits, plain for exponents -5 to 15, else `d.ddde±N`."""
    if value == 0.0:
        return "-0.0" if math.copysign(1.0, value) < 0 else "0.0"
    sign = "-" if value < 0 else ""
    mantissa, _, exp = repr(abs(value)).partition("e")
    whole, _, fraction = mantissa.partition(".")
    all_digits = whole + fraction
    exponent = int(exp or "0") + len(whole) - 1
    exponent -= len(all_digits) - len(all_digits.lstrip("0"))
    digits = all_digits.strip("0")
    if -5 <= exponent <= 15:
        if exponent >= len(digits) - 1:
            return sign + digits + "0" * (exponent - len(digits) + 1) + ".0"
        if exponent >= 0:
            return sign + digits[: exponent + 1] + "." + digits[exponent + 1 :]
        return sign + "0." + "0" * (-exponent - 1) + digits
    tail = "." + digits[1:] if len(digits) > 1 else ""
    return "%s%s%se%s%d" % (sign, digits[0], tail, "+" if exponent >= 0 else "-", abs(exponent))
