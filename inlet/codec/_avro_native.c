/* Avro binary encoding of validated records, in C: the gateway's hot loop.
 *
 * Inlet's own Avro writer. Where this module could not be built, _avro_writer.py falls back to
 * fastavro, with the same contract: the same schemas, the same values (a msgspec Struct per record,
 * fields in Avro order, values as msgspec decoded them), byte for byte the same output (the tests
 * compare both, and this one with fastavro's own bytes). Why C: a generated Python writer spent
 * 3 us of a record's 11 us of gateway CPU, fastavro more; this one a tenth of that (the numbers of
 * both writers are in _avro_writer.py).
 *
 * _avro_writer.py turns a schema into a *program*: nested tuples (opcode, arguments...), parsed
 * once here into a tree of nodes. Writer(program, header, astuple, max_depth) then encodes records:
 * encode(record) -> bytes (header + Avro body), ValueError when a value does not fit (a decimal's
 * precision or scale: the one check left to the writer).
 *
 * Hostile values. The gateway only ever hands over what msgspec decoded, but the writer stays
 * memory-safe and honest whatever Python objects it is given (tests/unit/test_avro_hostile.py, run
 * under AddressSanitizer + UBSan by test_avro_sanitized.py): any call back into Python (__index__,
 * __float__, __bool__, __hash__, __str__, utcoffset, a property...) may run code that mutates a list
 * being encoded, so each item is held while it is encoded and the list's size read again after
 * it; a value is read through its base type's method (Decimal.__str__, datetime.utcoffset), not an
 * override, so it is encoded as what it is; every integer conversion and sum is checked, and a
 * value that does not fit raises (OverflowError, ValueError, TypeError), never wraps. The C
 * recursion follows the program, never the value, so its depth is the program's (node_parse's
 * limit). */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <datetime.h>
#include <stdint.h>
#include <string.h>

enum {
    OP_STRING = 1,
    OP_LONG = 2,
    OP_DOUBLE = 3,
    OP_BOOLEAN = 4,
    OP_RECORD = 5,   /* (5, (field nodes...)) */
    OP_ENUM = 6,     /* (6, {symbol: index}) */
    OP_ARRAY = 7,    /* (7, item node) */
    OP_OPTIONAL = 8, /* (8, node): ["null", T] */
    OP_DECIMAL = 9,  /* (9, precision, scale): bytes, precision <= 38 */
    OP_DATE = 10,
    OP_TIMESTAMP_MICROS = 11,
    OP_TIME_MICROS = 12,
    OP_UUID = 13,
};

typedef struct Node {
    int op;
    int precision, scale;   /* OP_DECIMAL */
    PyObject *symbols;      /* OP_ENUM: dict, owned */
    Py_ssize_t count;       /* OP_RECORD: fields */
    struct Node **children; /* OP_RECORD: count nodes; OP_ARRAY, OP_OPTIONAL: one */
} Node;

typedef struct {
    char *data;
    Py_ssize_t len, cap;
    char inline_data[512];
} Buffer;

/* The base types' own methods, so that a subclass's override cannot lie about its value. */
static PyObject *decimal_type;      /* decimal.Decimal */
static PyObject *decimal_str;       /* decimal.Decimal.__str__ */
static PyObject *datetime_utcoffset; /* datetime.datetime.utcoffset: the tzinfo's, range-checked */
static PyObject *sixty_four;        /* 64, for the high half of a UUID's int */

typedef struct {
    PyObject_HEAD
    Node *root;
    PyObject *header; /* bytes */
    PyObject *astuple;
} Writer;

/* ---- nodes ---------------------------------------------------------------------------------- */

static void node_free(Node *node) {
    if (node == NULL) return;
    for (Py_ssize_t i = 0; i < node->count; i++) node_free(node->children[i]);
    PyMem_Free(node->children);
    Py_XDECREF(node->symbols);
    PyMem_Free(node);
}

/* max_depth is _avro_writer.MAX_PROGRAM_DEPTH, derived there from the one nesting limit of
 * connector definitions (inlet.model.fields.MAX_NESTING_DEPTH): a node at depth > max_depth is
 * refused, which also bounds the recursion of put_value. */
static Node *node_parse(PyObject *spec, int depth, int max_depth) {
    if (depth > max_depth) {
        PyErr_Format(PyExc_ValueError, "program nests deeper than %d", max_depth);
        return NULL;
    }
    if (!PyTuple_Check(spec) || PyTuple_GET_SIZE(spec) < 1) {
        PyErr_SetString(PyExc_TypeError, "a program node is a non-empty tuple");
        return NULL;
    }
    long op = PyLong_AsLong(PyTuple_GET_ITEM(spec, 0));
    if (op == -1 && PyErr_Occurred()) return NULL;
    Node *node = PyMem_Calloc(1, sizeof(Node));
    if (node == NULL) return (Node *)PyErr_NoMemory();
    node->op = (int)op;
    Py_ssize_t size = PyTuple_GET_SIZE(spec);
    switch (op) {
    case OP_STRING: case OP_LONG: case OP_DOUBLE: case OP_BOOLEAN: case OP_DATE:
    case OP_TIMESTAMP_MICROS: case OP_TIME_MICROS: case OP_UUID:
        return node;
    case OP_RECORD: {
        PyObject *fields = size == 2 ? PyTuple_GET_ITEM(spec, 1) : NULL;
        if (fields == NULL || !PyTuple_Check(fields)) break;
        Py_ssize_t count = PyTuple_GET_SIZE(fields);
        node->children = PyMem_Calloc(count ? count : 1, sizeof(Node *));
        if (node->children == NULL) {
            PyMem_Free(node);
            return (Node *)PyErr_NoMemory();
        }
        node->count = count;
        for (Py_ssize_t i = 0; i < count; i++) {
            node->children[i] = node_parse(PyTuple_GET_ITEM(fields, i), depth + 1, max_depth);
            if (node->children[i] == NULL) {
                node_free(node);
                return NULL;
            }
        }
        return node;
    }
    case OP_ENUM: {
        PyObject *symbols = size == 2 ? PyTuple_GET_ITEM(spec, 1) : NULL;
        if (symbols == NULL || !PyDict_Check(symbols)) break;
        /* A copy of its own, of exact str keys and int indexes: the caller's dict may change
         * later, and a lookup then runs no Python code but the looked-up value's. */
        node->symbols = PyDict_Copy(symbols);
        if (node->symbols == NULL) {
            PyMem_Free(node);
            return NULL;
        }
        PyObject *symbol, *index;
        Py_ssize_t at = 0;
        int valid = 1;
        while (valid && PyDict_Next(node->symbols, &at, &symbol, &index)) {
            int overflow;
            long long number = PyLong_CheckExact(index) ? PyLong_AsLongLongAndOverflow(index,
                                                                                     &overflow)
                                                        : -1;
            valid = PyUnicode_CheckExact(symbol) && number >= 0 && number <= INT32_MAX;
        }
        if (!valid) break;
        return node;
    }
    case OP_ARRAY: case OP_OPTIONAL: {
        if (size != 2) break;
        node->children = PyMem_Calloc(1, sizeof(Node *));
        if (node->children == NULL) {
            PyMem_Free(node);
            return (Node *)PyErr_NoMemory();
        }
        node->count = 1;
        node->children[0] = node_parse(PyTuple_GET_ITEM(spec, 1), depth + 1, max_depth);
        if (node->children[0] == NULL) {
            node_free(node);
            return NULL;
        }
        return node;
    }
    case OP_DECIMAL: {
        if (size != 3) break;
        long precision = PyLong_AsLong(PyTuple_GET_ITEM(spec, 1));
        long scale = precision == -1 && PyErr_Occurred() ? -1
                                                          : PyLong_AsLong(PyTuple_GET_ITEM(spec, 2));
        if (scale == -1 && PyErr_Occurred()) {
            PyMem_Free(node);
            return NULL;
        }
        if (precision < 1 || precision > 38 || scale < 0 || scale > precision) break;
        node->precision = (int)precision;
        node->scale = (int)scale;
        return node;
    }
    default:
        break;
    }
    node_free(node);
    PyErr_Format(PyExc_ValueError, "malformed program node %R", spec);
    return NULL;
}

/* ---- output --------------------------------------------------------------------------------- */

static int buf_reserve(Buffer *buf, Py_ssize_t more) {
    if (more <= buf->cap - buf->len) return 0;
    if (more > PY_SSIZE_T_MAX / 2 - buf->len) { /* doubling would overflow: no such memory */
        PyErr_NoMemory();
        return -1;
    }
    Py_ssize_t cap = buf->cap * 2;
    while (cap < buf->len + more) cap *= 2;
    char *data;
    if (buf->data == buf->inline_data) {
        data = PyMem_Malloc(cap);
        if (data != NULL) memcpy(data, buf->data, buf->len);
    } else {
        data = PyMem_Realloc(buf->data, cap);
    }
    if (data == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    buf->data = data;
    buf->cap = cap;
    return 0;
}

static inline int buf_put(Buffer *buf, const void *data, Py_ssize_t size) {
    if (buf_reserve(buf, size) < 0) return -1;
    memcpy(buf->data + buf->len, data, size);
    buf->len += size;
    return 0;
}

static inline int buf_byte(Buffer *buf, unsigned char byte) {
    if (buf->len >= buf->cap && buf_reserve(buf, 1) < 0) return -1;
    buf->data[buf->len++] = (char)byte;
    return 0;
}

/* Zigzag varint: Avro's int and long. */
static inline int put_long(Buffer *buf, int64_t value) {
    uint64_t n = ((uint64_t)value << 1) ^ (uint64_t)(value >> 63);
    if (buf_reserve(buf, 10) < 0) return -1;
    unsigned char *out = (unsigned char *)buf->data + buf->len;
    Py_ssize_t i = 0;
    while (n >= 0x80) {
        out[i++] = (unsigned char)((n & 0x7F) | 0x80);
        n >>= 7;
    }
    out[i++] = (unsigned char)n;
    buf->len += i;
    return 0;
}

/* ---- values --------------------------------------------------------------------------------- */

/* Days from 1970-01-01 to a proleptic Gregorian date (H. Hinnant's days_from_civil). */
static int64_t days_from_civil(int64_t y, int64_t m, int64_t d) {
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static int put_string(Buffer *buf, PyObject *value) {
    Py_ssize_t size;
    const char *data = PyUnicode_AsUTF8AndSize(value, &size);
    if (data == NULL) return -1;
    if (put_long(buf, size) < 0) return -1;
    return buf_put(buf, data, size);
}

static int out_of_range(const char *what) {
    PyErr_Format(PyExc_OverflowError, "%s is out of range for an Avro long", what);
    return -1;
}

static int put_timestamp_micros(Buffer *buf, PyObject *value) {
    if (!PyDateTime_Check(value)) {
        PyErr_SetString(PyExc_TypeError, "a timestamp must be a datetime");
        return -1;
    }
    /* datetime.utcoffset, not the value's own: the tzinfo's offset, which datetime checks is
     * within a day, as datetime arithmetic (and so fastavro) reads it. */
    PyObject *offset = PyObject_CallOneArg(datetime_utcoffset, value);
    if (offset == NULL) return -1;
    if (offset == Py_None) { /* msgspec lets only aware datetimes through */
        Py_DECREF(offset);
        PyErr_SetString(PyExc_ValueError, "a timestamp needs an offset");
        return -1;
    }
    if (!PyDelta_Check(offset)) {
        Py_DECREF(offset);
        PyErr_SetString(PyExc_TypeError, "utcoffset() did not return a timedelta");
        return -1;
    }
    int64_t offset_days = PyDateTime_DELTA_GET_DAYS(offset);
    int64_t offset_seconds = PyDateTime_DELTA_GET_SECONDS(offset);
    int64_t offset_micros = PyDateTime_DELTA_GET_MICROSECONDS(offset);
    Py_DECREF(offset);
    /* Within range for any datetime and a checked offset; checked all the same, so that no value
     * can make the sum wrap into another instant. */
    int64_t days = days_from_civil(PyDateTime_GET_YEAR(value), PyDateTime_GET_MONTH(value),
                                   PyDateTime_GET_DAY(value));
    int64_t seconds, micros;
    if (__builtin_sub_overflow(days, offset_days, &days) ||
        __builtin_mul_overflow(days, (int64_t)86400, &seconds) ||
        __builtin_add_overflow(seconds,
                               (int64_t)PyDateTime_DATE_GET_HOUR(value) * 3600 +
                                   PyDateTime_DATE_GET_MINUTE(value) * 60 +
                                   PyDateTime_DATE_GET_SECOND(value) - offset_seconds,
                               &seconds) ||
        __builtin_mul_overflow(seconds, (int64_t)1000000, &micros) ||
        __builtin_add_overflow(micros,
                               (int64_t)PyDateTime_DATE_GET_MICROSECOND(value) - offset_micros,
                               &micros)) {
        return out_of_range("the timestamp");
    }
    return put_long(buf, micros);
}

static int put_uuid(Buffer *buf, PyObject *value) {
    static const char hex[] = "0123456789abcdef";
    PyObject *number = PyObject_GetAttrString(value, "int");
    if (number == NULL) return -1;
    /* An exact int, as UUID() makes it: then the shift and the conversions run no Python code.
     * From 0 to 2**128 - 1: the high half must fit 64 bits unmasked. */
    if (!PyLong_CheckExact(number)) {
        Py_DECREF(number);
        PyErr_SetString(PyExc_TypeError, "a UUID's int must be an int");
        return -1;
    }
    PyObject *high_part = PyNumber_Rshift(number, sixty_four);
    uint64_t low = PyLong_AsUnsignedLongLongMask(number); /* of an exact int: cannot fail */
    Py_DECREF(number);
    if (high_part == NULL) return -1;
    uint64_t high = PyLong_AsUnsignedLongLong(high_part);
    Py_DECREF(high_part);
    if (high == (uint64_t)-1 && PyErr_Occurred()) {
        if (!PyErr_ExceptionMatches(PyExc_OverflowError)) return -1;
        PyErr_Clear();
        PyErr_SetString(PyExc_ValueError, "a UUID's int must be from 0 to 2**128 - 1");
        return -1;
    }
    char text[37]; /* 8-4-4-4-12, lower case: str(UUID) */
    int at = 0;
    for (int i = 0; i < 32; i++) {
        if (i == 8 || i == 12 || i == 16 || i == 20) text[at++] = '-';
        uint64_t half = i < 16 ? high : low;
        text[at++] = hex[(half >> (60 - 4 * (i % 16))) & 0xF];
    }
    if (buf_byte(buf, 72) < 0) return -1; /* the length, 36, zigzagged */
    return buf_put(buf, text, 36);
}

/* A decimal's unscaled value (value * 10**scale) when it fits decimal(precision, scale) exactly;
 * else ValueError. Read off the Decimal's text ("-12.5", "1.2E+5"): never through a float, never
 * rounded, as _decimals.unscaled_decimal. */
static int decimal_unscaled(PyObject *value, int precision, int scale, __int128 *result) {
    PyObject *text_object;
    if (Py_IS_TYPE(value, (PyTypeObject *)decimal_type)) {
        text_object = PyObject_Str(value);
    } else if (PyObject_TypeCheck(value, (PyTypeObject *)decimal_type)) {
        text_object = PyObject_CallOneArg(decimal_str, value); /* the value's, not an override's */
    } else {
        PyErr_SetString(PyExc_TypeError, "a decimal must be a Decimal");
        return -1;
    }
    if (text_object == NULL) return -1;
    Py_ssize_t size;
    const char *text = PyUnicode_AsUTF8AndSize(text_object, &size);
    if (text == NULL) {
        Py_DECREF(text_object);
        return -1;
    }
    const char *at = text, *end = text + size;
    int negative = 0;
    if (at < end && (*at == '-' || *at == '+')) negative = *at++ == '-';
    char digits[64];
    int ndigits = 0, any_digit = 0, seen_point = 0;
    int64_t after_point = 0, zeros_beyond = 0; /* zeros past a full `digits`: value unchanged */
    const char *problem = NULL;
    for (; at < end && (*at == '.' || (*at >= '0' && *at <= '9')); at++) {
        if (*at == '.') {
            seen_point = 1;
            continue;
        }
        any_digit = 1;
        if (seen_point) after_point++;
        if (ndigits == 0 && *at == '0') continue; /* leading zeros carry nothing */
        if (ndigits < (int)sizeof(digits)) {
            digits[ndigits++] = *at;
        } else if (*at == '0') {
            zeros_beyond++;
        } else { /* over 64 significant digits: more than any precision (<= 38) holds */
            problem = "too many digits";
            break;
        }
    }
    int64_t exponent = 0;
    if (problem == NULL && !any_digit) problem = "must be a finite number"; /* NaN, Infinity */
    if (problem == NULL && at < end && (*at == 'E' || *at == 'e')) {
        at++;
        int exponent_negative = 0;
        if (at < end && (*at == '-' || *at == '+')) exponent_negative = *at++ == '-';
        if (at == end) problem = "malformed exponent";
        for (; at < end && *at >= '0' && *at <= '9'; at++) {
            if (exponent < 1000000000) exponent = exponent * 10 + (*at - '0'); /* else: clamp */
        }
        if (exponent_negative) exponent = -exponent;
    }
    if (problem == NULL && at != end) problem = "malformed decimal text";
    Py_DECREF(text_object);
    if (problem != NULL) goto refused;

    /* value = digits * 10**(exponent - after_point + zeros_beyond), trailing zeros dropped;
     * unscaled = value * 10**scale = digits * 10**shift: an integer of ndigits + shift digits. */
    int64_t shift = exponent - after_point + zeros_beyond + scale;
    while (ndigits > 0 && digits[ndigits - 1] == '0') { /* 1.500 fits scale 2 */
        ndigits--;
        shift++;
    }
    if (ndigits == 0) { /* zero, whatever its exponent */
        *result = 0;
        return 0;
    }
    if (shift < 0 || ndigits + shift > precision) goto refused;
    __int128 unscaled = 0;
    for (int i = 0; i < ndigits; i++) unscaled = unscaled * 10 + (digits[i] - '0');
    for (int64_t i = 0; i < shift; i++) unscaled *= 10;
    *result = negative ? -unscaled : unscaled;
    return 0;

refused: {
    /* The reason, in _decimals.py's words (one source of messages for every check). */
    PyObject *module = PyImport_ImportModule("inlet.codec._decimals");
    PyObject *message = module ? PyObject_CallMethod(module, "decimal_problem", "Oii", value,
                                                     precision, scale)
                               : NULL;
    Py_XDECREF(module);
    if (message != NULL) {
        PyErr_SetObject(PyExc_ValueError, message);
        Py_DECREF(message);
    }
    return -1;
}
}

static int put_decimal(Buffer *buf, PyObject *value, const Node *node) {
    __int128 unscaled;
    if (decimal_unscaled(value, node->precision, node->scale, &unscaled) < 0) return -1;
    /* Two's complement, sized from the magnitude like fastavro: (bit_length + 8) // 8 bytes. */
    unsigned __int128 magnitude =
        unscaled < 0 ? -(unsigned __int128)unscaled : (unsigned __int128)unscaled;
    int bits = 0;
    while (magnitude) {
        bits++;
        magnitude >>= 1;
    }
    int size = (bits + 8) / 8;
    unsigned char data[17];
    unsigned __int128 word = (unsigned __int128)unscaled;
    for (int i = size - 1; i >= 0; i--) {
        data[i] = (unsigned char)(word & 0xFF);
        word >>= 8;
    }
    if (buf_byte(buf, (unsigned char)(size << 1)) < 0) return -1;
    return buf_put(buf, data, size);
}

static int put_value(Writer *self, Buffer *buf, const Node *node, PyObject *value);

static int put_record(Writer *self, Buffer *buf, const Node *node, PyObject *record) {
    PyObject *values = PyObject_CallOneArg(self->astuple, record);
    if (values == NULL) return -1;
    /* The top record may have fields beyond the schema's, after them (the codec's probes). */
    if (!PyTuple_Check(values) || PyTuple_GET_SIZE(values) < node->count) {
        Py_DECREF(values);
        PyErr_SetString(PyExc_TypeError, "a record has fewer fields than its schema");
        return -1;
    }
    for (Py_ssize_t i = 0; i < node->count; i++) {
        if (put_value(self, buf, node->children[i], PyTuple_GET_ITEM(values, i)) < 0) {
            Py_DECREF(values);
            return -1;
        }
    }
    Py_DECREF(values);
    return 0;
}

static int put_value(Writer *self, Buffer *buf, const Node *node, PyObject *value) {
    switch (node->op) {
    case OP_STRING:
        return put_string(buf, value);
    case OP_LONG: {
        long long number = PyLong_AsLongLong(value);
        if (number == -1 && PyErr_Occurred()) return -1;
        return put_long(buf, number);
    }
    case OP_DOUBLE: {
        double number = PyFloat_AsDouble(value);
        if (number == -1.0 && PyErr_Occurred()) return -1;
        if (buf_reserve(buf, 8) < 0) return -1;
        if (PyFloat_Pack8(number, buf->data + buf->len, 1) < 0) return -1;
        buf->len += 8;
        return 0;
    }
    case OP_BOOLEAN: {
        int truth = PyObject_IsTrue(value);
        if (truth < 0) return -1;
        return buf_byte(buf, (unsigned char)truth);
    }
    case OP_RECORD:
        return put_record(self, buf, node, value);
    case OP_ENUM: {
        PyObject *index = PyDict_GetItemWithError(node->symbols, value);
        if (index == NULL) {
            if (!PyErr_Occurred()) PyErr_Format(PyExc_ValueError, "%R is not a symbol", value);
            return -1;
        }
        long long number = PyLong_AsLongLong(index);
        if (number == -1 && PyErr_Occurred()) return -1;
        return put_long(buf, number);
    }
    case OP_ARRAY: { /* one block, then the empty block that ends it (as fastavro writes) */
        PyObject *items = PySequence_Fast(value, "an array must be a sequence");
        if (items == NULL) return -1;
        Py_ssize_t count = PySequence_Fast_GET_SIZE(items);
        int failed = count > 0 && put_long(buf, count) < 0;
        for (Py_ssize_t i = 0; !failed && i < count; i++) {
            /* An item's encoding (and its release) may run Python code that changes the list,
             * even the copy PySequence_Fast made (gc finds it): the item is held meanwhile, and
             * the size read again before the next one. The count is written: a list whose size
             * changed is an error, as for a dict iterated in Python. */
            PyObject *item = PySequence_Fast_GET_ITEM(items, i);
            Py_INCREF(item);
            failed = put_value(self, buf, node->children[0], item) < 0;
            Py_DECREF(item);
            if (!failed && PySequence_Fast_GET_SIZE(items) != count) {
                PyErr_SetString(PyExc_RuntimeError, "an array changed size while it was encoded");
                failed = 1;
            }
        }
        Py_DECREF(items);
        if (failed) return -1;
        return buf_byte(buf, 0);
    }
    case OP_OPTIONAL:
        if (value == Py_None) return buf_byte(buf, 0);
        if (buf_byte(buf, 2) < 0) return -1; /* branch 1, zigzagged */
        return put_value(self, buf, node->children[0], value);
    case OP_DECIMAL:
        return put_decimal(buf, value, node);
    case OP_DATE:
        if (!PyDate_Check(value)) {
            PyErr_SetString(PyExc_TypeError, "a date must be a date");
            return -1;
        }
        return put_long(buf, days_from_civil(PyDateTime_GET_YEAR(value),
                                             PyDateTime_GET_MONTH(value),
                                             PyDateTime_GET_DAY(value)));
    case OP_TIMESTAMP_MICROS:
        return put_timestamp_micros(buf, value);
    case OP_TIME_MICROS:
        if (!PyTime_Check(value)) {
            PyErr_SetString(PyExc_TypeError, "a time must be a time");
            return -1;
        }
        return put_long(buf, ((int64_t)PyDateTime_TIME_GET_HOUR(value) * 3600 +
                              PyDateTime_TIME_GET_MINUTE(value) * 60 +
                              PyDateTime_TIME_GET_SECOND(value)) * 1000000 +
                                 PyDateTime_TIME_GET_MICROSECOND(value));
    case OP_UUID:
        return put_uuid(buf, value);
    default:
        PyErr_SetString(PyExc_SystemError, "unknown program node");
        return -1;
    }
}

/* ---- the Writer type ------------------------------------------------------------------------ */

static PyObject *Writer_new(PyTypeObject *type, PyObject *args, PyObject *kwargs) {
    static char *names[] = {"program", "header", "astuple", "max_depth", NULL};
    PyObject *program, *header, *astuple;
    int max_depth;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "OSOi", names, &program, &header, &astuple,
                                     &max_depth)) {
        return NULL;
    }
    Node *root = node_parse(program, 0, max_depth);
    if (root == NULL) return NULL;
    if (root->op != OP_RECORD) {
        node_free(root);
        PyErr_SetString(PyExc_ValueError, "a program's root is a record");
        return NULL;
    }
    Writer *self = (Writer *)type->tp_alloc(type, 0);
    if (self == NULL) {
        node_free(root);
        return NULL;
    }
    self->root = root;
    Py_INCREF(header);
    self->header = header;
    Py_INCREF(astuple);
    self->astuple = astuple;
    return (PyObject *)self;
}

static void Writer_dealloc(Writer *self) {
    node_free(self->root);
    Py_XDECREF(self->header);
    Py_XDECREF(self->astuple);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *Writer_encode(Writer *self, PyObject *record) {
    Buffer buf;
    buf.data = buf.inline_data;
    buf.len = 0;
    buf.cap = sizeof(buf.inline_data);
    PyObject *result = NULL;
    if (buf_put(&buf, PyBytes_AS_STRING(self->header), PyBytes_GET_SIZE(self->header)) == 0 &&
        put_record(self, &buf, self->root, record) == 0) {
        result = PyBytes_FromStringAndSize(buf.data, buf.len);
    }
    if (buf.data != buf.inline_data) PyMem_Free(buf.data);
    return result;
}

static PyMethodDef Writer_methods[] = {
    {"encode", (PyCFunction)Writer_encode, METH_O,
     "encode(record) -> bytes: the header, then the record's Avro body."},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject WriterType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "inlet.codec._avro_native.Writer",
    .tp_doc = "Writer(program, header, astuple, max_depth): encodes records of one Avro record "
              "schema.",
    .tp_basicsize = sizeof(Writer),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_new = Writer_new,
    .tp_dealloc = (destructor)Writer_dealloc,
    .tp_methods = Writer_methods,
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "inlet.codec._avro_native",
    .m_doc = "Avro binary encoding of validated records (see _avro_writer.py).",
    .m_size = -1,
};

static PyObject *attribute_of(const char *module_name, const char *name) {
    PyObject *module = PyImport_ImportModule(module_name);
    if (module == NULL) return NULL;
    PyObject *found = PyObject_GetAttrString(module, name);
    Py_DECREF(module);
    return found;
}

PyMODINIT_FUNC PyInit__avro_native(void) {
    PyDateTime_IMPORT;
    if (PyDateTimeAPI == NULL) return NULL;
    if (decimal_type == NULL) { /* once: m_size -1, the module is never re-initialised */
        decimal_type = attribute_of("decimal", "Decimal");
        if (decimal_type == NULL) return NULL;
        if (!PyType_Check(decimal_type)) {
            Py_CLEAR(decimal_type);
            PyErr_SetString(PyExc_TypeError, "decimal.Decimal is not a type");
            return NULL;
        }
        decimal_str = PyObject_GetAttrString(decimal_type, "__str__");
        datetime_utcoffset = PyObject_GetAttrString((PyObject *)PyDateTimeAPI->DateTimeType,
                                                    "utcoffset");
        sixty_four = PyLong_FromLong(64);
        if (decimal_str == NULL || datetime_utcoffset == NULL || sixty_four == NULL) {
            Py_CLEAR(decimal_type);
            Py_CLEAR(decimal_str);
            Py_CLEAR(datetime_utcoffset);
            Py_CLEAR(sixty_four);
            return NULL;
        }
    }
    if (PyType_Ready(&WriterType) < 0) return NULL;
    PyObject *m = PyModule_Create(&module);
    if (m == NULL) return NULL;
    Py_INCREF(&WriterType);
    if (PyModule_AddObject(m, "Writer", (PyObject *)&WriterType) < 0) {
        Py_DECREF(&WriterType);
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
