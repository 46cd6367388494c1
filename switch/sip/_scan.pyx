# cython: language_level=3, boundscheck=False, wraparound=False
"""C fast path of parse_message for the common, clean message (RFC 3261 §7).

`scan_message` accepts only messages the Python parser in message.py would accept
unchanged: CRLF line ends, no folding, a known method, a plain sip: Request-URI and
header values matching the fast validators of headers.py. For anything else it
returns None and message.py runs the full parser, which owns every error message.
switch/sip/_scan_py.py is the pure-Python twin with the same results.
"""

from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from libc.string cimport memchr, memcmp
from cpython.unicode cimport PyUnicode_DecodeASCII, PyUnicode_DecodeUTF8

from switch.sip import headers as _headers

cdef object _canonical_name = _headers.canonical_name
cdef frozenset _METHODS = frozenset({
    b"INVITE", b"ACK", b"BYE", b"CANCEL", b"OPTIONS", b"REGISTER", b"PRACK",
    b"SUBSCRIBE", b"NOTIFY", b"PUBLISH", b"INFO", b"REFER", b"MESSAGE", b"UPDATE"})
# Watched header -> how to validate it (see _check_value).
cdef dict _WATCH = {"Via": 1, "From": 2, "To": 3, "Call-ID": 4, "CSeq": 5,
                    "Content-Length": 6, "Max-Forwards": 7, "Expires": 8,
                    "Contact": 9, "Route": 9, "Record-Route": 9}


# Header names as spelled on the wire (headers.EXACT_NAMES) in an open-addressing
# table keyed on the bytes, so the hot loop creates no name objects.
cdef enum:
    NAME_SLOTS = 1024  # a power of two, several times the number of spellings


cdef struct NameEntry:
    const char* spelling
    Py_ssize_t length
    void* canonical  # borrowed: _NAME_KEEP holds the reference
    int kind
    bint same  # spelled canonically: the line serializes back byte for byte


cdef NameEntry NAMES[NAME_SLOTS]
cdef list _NAME_KEEP = []


cdef inline unsigned int _hash(const unsigned char* p, Py_ssize_t n) noexcept:
    cdef unsigned int h = 2166136261u
    cdef Py_ssize_t i
    for i in range(n):
        h = (h ^ p[i]) * 16777619u
    return h


cdef NameEntry* _lookup(const unsigned char* p, Py_ssize_t n) noexcept:
    cdef unsigned int slot = _hash(p, n) & (NAME_SLOTS - 1)
    cdef NameEntry* entry
    while True:
        entry = &NAMES[slot]
        if entry.spelling == NULL:
            return NULL
        if entry.length == n and memcmp(entry.spelling, p, n) == 0:
            return entry
        slot = (slot + 1) & (NAME_SLOTS - 1)


cdef void _init_names():
    cdef bytes raw
    cdef unsigned int slot
    cdef int i
    for i in range(NAME_SLOTS):
        NAMES[i].spelling = NULL
    for spelling, canonical in _headers.EXACT_NAMES.items():
        raw = spelling.encode("ascii")
        _NAME_KEEP.append((raw, canonical))
        slot = _hash(<const unsigned char*>PyBytes_AS_STRING(raw), len(raw)) & (NAME_SLOTS - 1)
        while NAMES[slot].spelling != NULL:
            slot = (slot + 1) & (NAME_SLOTS - 1)
        NAMES[slot].spelling = PyBytes_AS_STRING(raw)
        NAMES[slot].length = len(raw)
        NAMES[slot].canonical = <void*>canonical
        NAMES[slot].kind = _WATCH.get(canonical, 0)
        NAMES[slot].same = spelling == canonical


_init_names()

# Character classes of the fast regexes in headers.py and uri.py.
cdef unsigned char TOKEN = 1, USER = 2, PCHAR = 4, USER2 = 8, DISPLAY = 16, QTEXT = 32
cdef unsigned char CLS[256]


cdef void _mark(bytes chars, unsigned char bit):
    for c in chars:
        CLS[c] |= bit


cdef void _init_classes():
    cdef int c
    for c in range(256):
        CLS[c] = 0
    alnum = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
    _mark(alnum + b"-.!%*_+`'~", TOKEN)
    _mark(alnum + b"-_.!~*'()&=+$,;?/", USER)
    _mark(alnum + b"-_.!~*'()[]/:&+$", PCHAR)
    _mark(alnum + b"-_.!~*'()&=+$/", USER2)
    _mark(alnum + b"-.!%*_+`'~ ", DISPLAY)
    for c in range(0x20, 0x7F):
        if c != 0x22 and c != 0x5C:
            CLS[c] |= QTEXT
    CLS[9] |= QTEXT


_init_classes()


cdef inline bint _alnum(unsigned char c) noexcept:
    return (48 <= c <= 57) or (65 <= c <= 90) or (97 <= c <= 122)


cdef inline Py_ssize_t _run(const unsigned char* p, Py_ssize_t i, Py_ssize_t n,
                            unsigned char bit) noexcept:
    while i < n and CLS[p[i]] & bit:
        i += 1
    return i


cdef Py_ssize_t _host(const unsigned char* p, Py_ssize_t i, Py_ssize_t n) noexcept:
    """FAST_HOST_RE (possessive, so a greedy scan is exact): -1 when no match."""
    cdef Py_ssize_t j
    while True:
        if i >= n or not _alnum(p[i]):
            return -1
        while i < n and _alnum(p[i]):
            i += 1
        while i < n and p[i] == 45:  # '-'+ then alnum+
            j = i
            while j < n and p[j] == 45:
                j += 1
            if j >= n or not _alnum(p[j]):
                return -1  # nothing after the host accepts '-'
            i = j
            while i < n and _alnum(p[i]):
                i += 1
        if i < n and p[i] == 46:  # '.'
            i += 1
            continue
        return i


cdef Py_ssize_t _port(const unsigned char* p, Py_ssize_t i, Py_ssize_t n) noexcept:
    """Optional ':' FAST_PORT_RE; -1 when a ':' is there but no fast port follows."""
    cdef Py_ssize_t j
    if i >= n or p[i] != 58:
        return i
    i += 1
    if i < n and 49 <= p[i] <= 53:
        i += 1
    j = i
    while j < n and j - i < 4 and 48 <= p[j] <= 57:
        j += 1
    if j == i:
        return -1
    return j


cdef Py_ssize_t _params(const unsigned char* p, Py_ssize_t i, Py_ssize_t n,
                        unsigned char bit, bint quoted) noexcept:
    """(;name(=value)?)* with name and value runs of `bit` (values may be quoted)."""
    cdef Py_ssize_t j
    while i < n and p[i] == 59:
        j = _run(p, i + 1, n, bit)
        if j == i + 1:
            return -1
        i = j
        if i < n and p[i] == 61:
            if quoted and i + 1 < n and p[i + 1] == 34:
                i = _quoted(p, i + 1, n)
                if i < 0:
                    return -1
            else:
                j = _run(p, i + 1, n, bit)
                if j == i + 1:
                    return -1
                i = j
    return i


cdef Py_ssize_t _quoted(const unsigned char* p, Py_ssize_t i, Py_ssize_t n) noexcept:
    i = _run(p, i + 1, n, QTEXT)
    if i < n and p[i] == 34:
        return i + 1
    return -1


cdef Py_ssize_t _sip_uri(const unsigned char* p, Py_ssize_t i, Py_ssize_t n,
                         unsigned char user_bit, bint uri_params) noexcept:
    cdef Py_ssize_t j
    if n - i >= 4 and p[i] == 115 and p[i + 1] == 105 and p[i + 2] == 112:
        i += 3
        if p[i] == 115:
            i += 1
        if i >= n or p[i] != 58:
            return -1
        i += 1
    else:
        return -1
    j = _run(p, i, n, user_bit)
    if j > i and j < n and p[j] == 64:
        i = j + 1
    i = _host(p, i, n)
    if i < 0:
        return -1
    i = _port(p, i, n)
    if i < 0 or not uri_params:
        return i
    return _params(p, i, n, PCHAR, False)


cdef Py_ssize_t _line_end(const unsigned char* p, Py_ssize_t start, Py_ssize_t n) noexcept:
    """Index of the CR of the CRLF ending the line at `start`; -1 for a bare CR or LF
    (the full parser handles those) or no line end."""
    cdef const unsigned char* lf = <const unsigned char*>memchr(p + start, 10, n - start)
    cdef Py_ssize_t eol
    if lf == NULL:
        return -1
    eol = lf - p - 1
    if eol < start or p[eol] != 13:
        return -1
    if memchr(p + start, 13, eol - start) != NULL:
        return -1
    return eol


cdef bint _via_fast(const unsigned char* p, Py_ssize_t n) noexcept:
    cdef Py_ssize_t i, j
    if n < 8 or p[0] != 83 or p[1] != 73 or p[2] != 80 or p[3] != 47 or p[4] != 50 \
            or p[5] != 46 or p[6] != 48 or p[7] != 47:
        return False
    j = _run(p, 8, n, TOKEN)
    if j == 8 or j >= n or p[j] != 32:
        return False
    i = _host(p, j + 1, n)
    if i < 0:
        return False
    i = _port(p, i, n)
    if i < 0:
        return False
    return _params(p, i, n, TOKEN, False) == n


cdef bint _name_addr_fast(const unsigned char* p, Py_ssize_t n) noexcept:
    cdef Py_ssize_t i = 0
    if n and p[0] == 34:
        i = _quoted(p, 0, n)
        if i >= 0 and i < n and p[i] == 32:
            i += 1
    else:
        i = _run(p, 0, n, DISPLAY)
    if i >= 0 and i < n and p[i] == 60:
        i = _sip_uri(p, i + 1, n, USER, True)
        if i >= 0 and i < n and p[i] == 62:
            if _params(p, i + 1, n, TOKEN, True) == n:
                return True
    i = _sip_uri(p, 0, n, USER2, False)
    return i >= 0 and _params(p, i, n, TOKEN, True) == n


cdef bint _request_uri_fast(const unsigned char* p, Py_ssize_t n) noexcept:
    return _sip_uri(p, 0, n, USER, True) == n


cdef bint _digits(const unsigned char* p, Py_ssize_t n) noexcept:
    cdef Py_ssize_t i
    if n == 0:
        return False
    for i in range(n):
        if not 48 <= p[i] <= 57:
            return False
    return True


cdef long long _number(const unsigned char* p, Py_ssize_t n) noexcept:
    """Value of 1 to 10 digits, else -1."""
    cdef long long v = 0
    cdef Py_ssize_t i
    if n == 0 or n > 10 or not _digits(p, n):
        return -1
    for i in range(n):
        v = v * 10 + (p[i] - 48)
    return v


def via_fast(bytes value not None) -> bool:
    return _via_fast(<const unsigned char*>PyBytes_AS_STRING(value), PyBytes_GET_SIZE(value))


def name_addr_fast(bytes value not None) -> bool:
    return _name_addr_fast(<const unsigned char*>PyBytes_AS_STRING(value),
                           PyBytes_GET_SIZE(value))


def request_uri_fast(bytes value not None) -> bool:
    return _request_uri_fast(<const unsigned char*>PyBytes_AS_STRING(value),
                             PyBytes_GET_SIZE(value))


def scan_message(bytes data not None, bint stream):
    """(method, uri_text, status, reason, raw, body) for a clean message, or None.
    method is None for a response; raw is (the header lines before Content-Length, the
    lines after it) when they are already in canonical form, else None. The header
    lines themselves are built by `header_lines` when first read."""
    cdef const unsigned char* p = <const unsigned char*>PyBytes_AS_STRING(data)
    cdef Py_ssize_t n = PyBytes_GET_SIZE(data)
    cdef Py_ssize_t i, j, eol, colon, vs, ve, line_start, head_start
    cdef Py_ssize_t cl_start = -1, cl_end = -1, body_start
    cdef long long content_length = -1, v
    cdef int kind, status = 0
    cdef unsigned int seen = 0, bit
    cdef bint canonical = True, same_name
    cdef NameEntry* entry
    cdef const unsigned char* found
    cdef object method = None, uri_text = "", reason = "", canon
    cdef bytes method_bytes = None
    if n == 0 or p[0] == 13 or p[0] == 10:
        return None
    # Start line.
    eol = _line_end(p, 0, n)
    if eol < 0:
        return None
    if eol >= 8 and p[0] == 83 and p[1] == 73 and p[2] == 80 and p[3] == 47:
        if not (p[4] == 50 and p[5] == 46 and p[6] == 48 and p[7] == 32) or eol < 11:
            return None
        if not (49 <= p[8] <= 54 and 48 <= p[9] <= 57 and 48 <= p[10] <= 57):
            return None
        status = (p[8] - 48) * 100 + (p[9] - 48) * 10 + (p[10] - 48)
        if eol > 11:
            if p[11] != 32:
                return None
            reason = PyUnicode_DecodeUTF8(<const char*>p + 12, eol - 12, "surrogateescape")
    else:
        i = 0
        while i < eol and p[i] != 32:
            i += 1
        method_bytes = PyBytes_FromStringAndSize(<const char*>p, i)
        if method_bytes not in _METHODS:
            return None
        j = i + 1
        while j < eol and p[j] != 32:
            j += 1
        if eol - j != 8 or not _request_uri_fast(p + i + 1, j - i - 1):
            return None
        if memcmp(p + j + 1, b"SIP/2.0", 7) != 0:
            return None
        method = PyUnicode_DecodeASCII(<const char*>p, i, NULL)
        uri_text = PyUnicode_DecodeASCII(<const char*>p + i + 1, j - i - 1, NULL)
    head_start = eol + 2
    line_start = head_start
    # Header lines, up to the empty line.
    while True:
        eol = _line_end(p, line_start, n)
        if eol < 0:
            return None
        if eol == line_start:
            break
        if p[line_start] == 32 or p[line_start] == 9:
            return None  # folded: the full parser unfolds
        found = <const unsigned char*>memchr(p + line_start, 58, eol - line_start)
        if found == NULL or found == p + line_start:
            return None
        colon = found - p
        entry = _lookup(p + line_start, colon - line_start)
        if entry != NULL:
            canon = <object>entry.canonical
            same_name = entry.same
            kind = entry.kind
        else:
            if _run(p, line_start, colon, TOKEN) != colon:
                return None
            text = PyUnicode_DecodeASCII(<const char*>p + line_start, colon - line_start,
                                         NULL)
            canon = _canonical_name(text)
            same_name = canon == text
            kind = _WATCH.get(canon, 0)
        vs = colon + 1
        while vs < eol and (p[vs] == 32 or p[vs] == 9):
            vs += 1
        ve = eol
        while ve > vs and (p[ve - 1] == 32 or p[ve - 1] == 9):
            ve -= 1
        if canonical and not (colon + 1 < eol and p[colon + 1] == 32 and vs == colon + 2
                              and ve == eol and ve > vs and same_name):
            canonical = False
        if kind:
            bit = 1u << kind
            if kind != 1 and kind != 9:
                if seen & bit:
                    return None  # duplicated: the full parser says which
            seen |= bit
            if not _check_value(kind, p + vs, ve - vs, method_bytes, &v):
                return None
            if kind == 6:
                content_length = v
                cl_start = line_start
                cl_end = eol + 2
        line_start = eol + 2
    # Via, From, To, Call-ID, CSeq are required.
    if (seen & 0b111110) != 0b111110:
        return None
    body_start = eol + 2
    if content_length >= 0:
        if content_length > n - body_start:
            return None
        body = PyBytes_FromStringAndSize(<const char*>p + body_start, content_length)
    elif stream:
        return None
    else:
        body = PyBytes_FromStringAndSize(<const char*>p + body_start, n - body_start)
    if not canonical:
        return method, uri_text, status, reason, None, body
    if cl_start < 0:
        return (method, uri_text, status, reason, (PyBytes_FromStringAndSize(
            <const char*>p + head_start, body_start - 2 - head_start), b""), body)
    return (method, uri_text, status, reason, (
        PyBytes_FromStringAndSize(<const char*>p + head_start, cl_start - head_start),
        PyBytes_FromStringAndSize(<const char*>p + cl_end, body_start - 2 - cl_end)), body)


def header_lines(bytes data not None):
    """The (canonical name, value) header lines of a message scan_message accepted,
    values trimmed and decoded (UTF-8, surrogateescape) as the full parser does."""
    cdef const unsigned char* p = <const unsigned char*>PyBytes_AS_STRING(data)
    cdef Py_ssize_t n = PyBytes_GET_SIZE(data)
    cdef Py_ssize_t eol, line_start, colon, vs, ve
    cdef const unsigned char* found
    cdef NameEntry* entry
    cdef list wire = []
    eol = _line_end(p, 0, n)
    while eol >= 0:
        line_start = eol + 2
        eol = _line_end(p, line_start, n)
        if eol <= line_start:
            break
        found = <const unsigned char*>memchr(p + line_start, 58, eol - line_start)
        if found == NULL:
            break
        colon = found - p
        entry = _lookup(p + line_start, colon - line_start)
        if entry != NULL:
            canon = <object>entry.canonical
        else:
            canon = _canonical_name(PyUnicode_DecodeUTF8(
                <const char*>p + line_start, colon - line_start, "surrogateescape"))
        vs = colon + 1
        while vs < eol and (p[vs] == 32 or p[vs] == 9):
            vs += 1
        ve = eol
        while ve > vs and (p[ve - 1] == 32 or p[ve - 1] == 9):
            ve -= 1
        wire.append((canon, PyUnicode_DecodeUTF8(<const char*>p + vs, ve - vs,
                                                 "surrogateescape")))
    return wire


cdef bint _check_value(int kind, const unsigned char* p, Py_ssize_t n, bytes method,
                       long long* out) noexcept:
    cdef Py_ssize_t i, j
    cdef long long v
    if kind == 1:
        return _via_fast(p, n)
    if kind == 2 or kind == 3 or kind == 9:
        # A comma may separate list elements: the full parser splits those.
        for i in range(n):
            if p[i] == 44:
                return False
        return _name_addr_fast(p, n)
    if kind == 4:
        if n == 0:
            return False
        for i in range(n):
            if not 0x21 <= p[i] <= 0x7E:
                return False
        return True
    if kind == 5:
        i = 0
        while i < n and 48 <= p[i] <= 57:
            i += 1
        if i == 0 or i >= 10 or i >= n or p[i] != 32:
            return False
        j = _run(p, i + 1, n, TOKEN)
        if j != n or j == i + 1:
            return False
        if method is None:
            return PyBytes_FromStringAndSize(<const char*>p + i + 1, n - i - 1) in _METHODS
        return (n - i - 1 == PyBytes_GET_SIZE(method)
                and memcmp(p + i + 1, PyBytes_AS_STRING(method), n - i - 1) == 0)
    v = _number(p, n)
    if v < 0:
        return False
    out[0] = v
    if kind == 7:
        return v <= 255
    if kind == 8:
        return v <= 4294967295
    return True
