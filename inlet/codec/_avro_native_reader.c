/* Avro binary decoding of whole batches of one schema, in C: the pipeline feeds' hot loop.
 *
 * The reverse of _avro_native.c. _avro_reader.py turns a record schema into a *program* (nested
 * tuples of an opcode and its arguments, as for the writer, plus the field names, the enum symbols
 * and, for each logical type, fastavro's own reader of it), parsed once here into a tree of nodes.
 * Reader(program, max_depth, errors) then reads Avro bodies into the very Python values
 * fastavro.schemaless_reader gives (dicts, lists, str, int, float, bool, None, Decimal, date,
 * datetime in timezone.utc, time, UUID); tests/unit/test_avro_reader.py checks both against each
 * other on generated schemas and values. Reader(..., uuid_text=True) gives each UUID as its text
 * instead, str() of the UUID (what a sink that stores text wants: no UUID object per record).
 *
 *   read(value, offset)          one body, from value[offset:]; raises like fastavro
 *   read_rows(values, offset)    (rows, failures): a dict per value, None where it failed;
 *                                failures = [(index, exception)] for the errors in `errors`
 *   read_columns(values, offset) (columns, failures): a list per top-level field, holding the
 *                                values that decoded, in order; failures as read_rows'
 *
 * Why C: fastavro spends about 20 us per record of the bench's shape (a Python call, a BytesIO,
 * a dispatch per field); this reads it in a fraction of that (the figures are in _avro_reader.py).
 *
 * Hostile bytes. A topic may hold anything (another writer, a corrupt record): every length and
 * count is checked against the bytes left, before it is used; a varint longer than 10 bytes is
 * refused (fastavro wraps it into some other number); an array block may not claim more items
 * than bytes remain (each item takes at least one, or the array is nonsense). A logical value the
 * fast path does not cover (a date beyond the year 9999, a decimal with more digits than its
 * precision, a UUID not in its 36-character form, a time outside a day) goes to fastavro's own
 * reader for it, which gives its value or its error. Where fastavro takes what Avro's spec does
 * not say (a negative enum or union index counts from the end, any non-zero boolean byte is true),
 * this does the same, so the two agree on every record they both read. The C recursion follows the
 * program, never the value, so its depth is the program's (node_parse's limit). */
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
    OP_RECORD = 5,   /* (5, (field nodes...), (field names...)) */
    OP_ENUM = 6,     /* (6, (symbols...)) */
    OP_ARRAY = 7,    /* (7, item node) */
    OP_OPTIONAL = 8, /* (8, node): ["null", T] */
    OP_DECIMAL = 9,  /* (9, precision, scale, slow): bytes */
    OP_DATE = 10,    /* (10, slow) */
    OP_TIMESTAMP_MICROS = 11,
    OP_TIME_MICROS = 12,
    OP_UUID = 13,
};

typedef struct Node {
    int op;
    int precision, scale;   /* OP_DECIMAL */
    PyObject *symbols;      /* OP_ENUM: tuple of str, owned */
    PyObject *names;        /* OP_RECORD: tuple of interned str, owned */
    PyObject *slow;         /* logical types: fastavro's reader of the raw value, owned */
    Py_ssize_t count;       /* OP_RECORD: fields */
    struct Node **children; /* OP_RECORD: count nodes; OP_ARRAY, OP_OPTIONAL: one */
} Node;

typedef struct {
    const unsigned char *at, *end;
    int uuid_text; /* UUIDs as their text, str(UUID(...)), not UUID objects */
} Input;

static PyObject *decimal_type; /* decimal.Decimal */
static PyObject *uuid_type;    /* uuid.UUID */
static PyObject *uuid_unknown; /* uuid.SafeUUID.unknown: what UUID(text) sets is_safe to */
static PyObject *str_int, *str_is_safe;

typedef struct {
    PyObject_HEAD
    Node *root;
    PyObject *errors; /* what read_rows and read_columns report per value, others raise */
    int uuid_text;    /* Reader(..., uuid_text=True) */
} Reader;

/* ---- nodes ---------------------------------------------------------------------------------- */

static void node_free(Node *node) {
    if (node == NULL) return;
    for (Py_ssize_t i = 0; i < node->count; i++) node_free(node->children[i]);
    PyMem_Free(node->children);
    Py_XDECREF(node->symbols);
    Py_XDECREF(node->names);
    Py_XDECREF(node->slow);
    PyMem_Free(node);
}

static int node_children(Node *node, Py_ssize_t count) {
    node->children = PyMem_Calloc(count ? count : 1, sizeof(Node *));
    if (node->children == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    node->count = count;
    return 0;
}

static int all_str(PyObject *tuple) {
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(tuple); i++) {
        if (!PyUnicode_CheckExact(PyTuple_GET_ITEM(tuple, i))) return 0;
    }
    return 1;
}

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
    case OP_STRING: case OP_LONG: case OP_DOUBLE: case OP_BOOLEAN:
        return node;
    case OP_DATE: case OP_TIMESTAMP_MICROS: case OP_TIME_MICROS: case OP_UUID: {
        if (size != 2 || !PyCallable_Check(PyTuple_GET_ITEM(spec, 1))) break;
        node->slow = Py_NewRef(PyTuple_GET_ITEM(spec, 1));
        return node;
    }
    case OP_RECORD: {
        if (size != 3) break;
        PyObject *fields = PyTuple_GET_ITEM(spec, 1), *names = PyTuple_GET_ITEM(spec, 2);
        if (!PyTuple_Check(fields) || !PyTuple_CheckExact(names) ||
            PyTuple_GET_SIZE(fields) != PyTuple_GET_SIZE(names) || !all_str(names)) {
            break;
        }
        Py_ssize_t count = PyTuple_GET_SIZE(fields);
        /* Interned copies: every row's keys are the same objects, hashed once. */
        node->names = PyTuple_New(count);
        if (node->names == NULL || node_children(node, count) < 0) {
            node_free(node);
            return NULL;
        }
        for (Py_ssize_t i = 0; i < count; i++) {
            PyObject *name = Py_NewRef(PyTuple_GET_ITEM(names, i));
            PyUnicode_InternInPlace(&name);
            PyTuple_SET_ITEM(node->names, i, name);
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
        if (symbols == NULL || !PyTuple_CheckExact(symbols) || !all_str(symbols)) break;
        node->symbols = Py_NewRef(symbols); /* a tuple: it cannot change later */
        return node;
    }
    case OP_ARRAY: case OP_OPTIONAL: {
        if (size != 2) break;
        if (node_children(node, 1) < 0) {
            node_free(node);
            return NULL;
        }
        node->children[0] = node_parse(PyTuple_GET_ITEM(spec, 1), depth + 1, max_depth);
        if (node->children[0] == NULL) {
            node_free(node);
            return NULL;
        }
        return node;
    }
    case OP_DECIMAL: {
        if (size != 4 || !PyCallable_Check(PyTuple_GET_ITEM(spec, 3))) break;
        long precision = PyLong_AsLong(PyTuple_GET_ITEM(spec, 1));
        long scale = precision == -1 && PyErr_Occurred() ? -1
                                                          : PyLong_AsLong(PyTuple_GET_ITEM(spec, 2));
        if (scale == -1 && PyErr_Occurred()) {
            node_free(node);
            return NULL;
        }
        if (precision < 1 || precision > 38 || scale < 0 || scale > precision) break;
        node->precision = (int)precision;
        node->scale = (int)scale;
        node->slow = Py_NewRef(PyTuple_GET_ITEM(spec, 3));
        return node;
    }
    default:
        break;
    }
    node_free(node);
    PyErr_Format(PyExc_ValueError, "malformed program node %R", spec);
    return NULL;
}

/* ---- input ---------------------------------------------------------------------------------- */

static int truncated(void) {
    PyErr_SetString(PyExc_EOFError, "the value ends before its schema does");
    return -1;
}

/* Zigzag varint: Avro's int and long, at most 10 bytes. */
static inline int get_long(Input *in, int64_t *result) {
    uint64_t n = 0;
    for (int shift = 0; shift < 70; shift += 7) {
        if (in->at >= in->end) return truncated();
        unsigned char byte = *in->at++;
        if (shift == 63 && byte > 1) break; /* bits beyond 64 */
        n |= (uint64_t)(byte & 0x7F) << shift;
        if (!(byte & 0x80)) {
            *result = (int64_t)(n >> 1) ^ -(int64_t)(n & 1);
            return 0;
        }
    }
    PyErr_SetString(PyExc_ValueError, "a varint longer than a long");
    return -1;
}

/* A length (of bytes or a string): from 0 to the bytes left. */
static int get_length(Input *in, Py_ssize_t *size) {
    int64_t n;
    if (get_long(in, &n) < 0) return -1;
    if (n < 0) {
        PyErr_Format(PyExc_ValueError, "a negative length (%lld)", (long long)n);
        return -1;
    }
    if (n > in->end - in->at) return truncated();
    *size = (Py_ssize_t)n;
    return 0;
}

/* An index into `count` things as fastavro takes it: Python's, negative ones from the end. */
static int get_index(Input *in, Py_ssize_t count, Py_ssize_t *index) {
    int64_t n;
    if (get_long(in, &n) < 0) return -1;
    if (n < 0) n += count;
    if (n < 0 || n >= count) {
        PyErr_SetString(PyExc_IndexError, "an index beyond its choices");
        return -1;
    }
    *index = (Py_ssize_t)n;
    return 0;
}

/* ---- values --------------------------------------------------------------------------------- */

/* Proleptic Gregorian date of days since 1970-01-01 (H. Hinnant's civil_from_days). */
static void civil_from_days(int64_t z, int *year, int *month, int *day) {
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    int64_t d = doy - (153 * mp + 2) / 5 + 1;
    int64_t m = mp < 10 ? mp + 3 : mp - 9;
    *year = (int)(yoe + era * 400 + (m <= 2));
    *month = (int)m;
    *day = (int)d;
}

/* date(1, 1, 1) and date(9999, 12, 31), in days since 1970-01-01. */
#define MIN_DAYS (-719162)
#define MAX_DAYS 2932896
#define MICROS_PER_DAY 86400000000LL

static PyObject *slow_long(const Node *node, int64_t value) {
    PyObject *raw = PyLong_FromLongLong(value);
    if (raw == NULL) return NULL;
    PyObject *result = PyObject_CallOneArg(node->slow, raw);
    Py_DECREF(raw);
    return result;
}

static PyObject *get_date(Input *in, const Node *node) {
    int64_t days;
    if (get_long(in, &days) < 0) return NULL;
    if (days < MIN_DAYS || days > MAX_DAYS) return slow_long(node, days); /* its ValueError */
    int year, month, day;
    civil_from_days(days, &year, &month, &day);
    return PyDate_FromDate(year, month, day);
}

static PyObject *get_timestamp_micros(Input *in, const Node *node) {
    int64_t micros;
    if (get_long(in, &micros) < 0) return NULL;
    int64_t days = micros / MICROS_PER_DAY, rest = micros % MICROS_PER_DAY;
    if (rest < 0) {
        rest += MICROS_PER_DAY;
        days--;
    }
    if (days < MIN_DAYS || days > MAX_DAYS) return slow_long(node, micros); /* its OverflowError */
    int year, month, day;
    civil_from_days(days, &year, &month, &day);
    int64_t seconds = rest / 1000000;
    return PyDateTimeAPI->DateTime_FromDateAndTime(
        year, month, day, (int)(seconds / 3600), (int)(seconds / 60 % 60), (int)(seconds % 60),
        (int)(rest % 1000000), PyDateTime_TimeZone_UTC, PyDateTimeAPI->DateTimeType);
}

static PyObject *get_time_micros(Input *in, const Node *node) {
    int64_t micros;
    if (get_long(in, &micros) < 0) return NULL;
    /* fastavro reads other values its own way (a negative one as a time, by float division and
     * Python's modulo): its reader gives them. */
    if (micros < 0 || micros >= MICROS_PER_DAY) return slow_long(node, micros);
    int64_t seconds = micros / 1000000;
    return PyTime_FromTime((int)(seconds / 3600), (int)(seconds / 60 % 60), (int)(seconds % 60),
                           (int)(micros % 1000000));
}

static int hex_value(unsigned char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* A UUID built as UUID(int=...) builds it, without its Python code: its two slots set. */
static PyObject *new_uuid(uint64_t high, uint64_t low) {
    PyObject *high_part = PyLong_FromUnsignedLongLong(high);
    PyObject *low_part = PyLong_FromUnsignedLongLong(low);
    PyObject *sixty_four = PyLong_FromLong(64);
    PyObject *shifted = high_part && sixty_four ? PyNumber_Lshift(high_part, sixty_four) : NULL;
    PyObject *number = shifted && low_part ? PyNumber_Or(shifted, low_part) : NULL;
    Py_XDECREF(high_part);
    Py_XDECREF(low_part);
    Py_XDECREF(sixty_four);
    Py_XDECREF(shifted);
    if (number == NULL) return NULL;
    PyTypeObject *type = (PyTypeObject *)uuid_type;
    PyObject *uuid = type->tp_alloc(type, 0);
    /* object.__setattr__: UUID's own __setattr__ refuses every change, its __init__ included. */
    if (uuid != NULL && (PyObject_GenericSetAttr(uuid, str_int, number) < 0 ||
                         PyObject_GenericSetAttr(uuid, str_is_safe, uuid_unknown) < 0)) {
        Py_CLEAR(uuid);
    }
    Py_DECREF(number);
    return uuid;
}

/* The text str(UUID(text)) gives for a 36-character UUID whose digits are all hex: lowercase. */
static PyObject *uuid_text(const unsigned char *text) {
    PyObject *result = PyUnicode_New(36, 127);
    if (result == NULL) return NULL;
    Py_UCS1 *out = PyUnicode_1BYTE_DATA(result);
    for (int i = 0; i < 36; i++) {
        out[i] = text[i] >= 'A' && text[i] <= 'F' ? (Py_UCS1)(text[i] - 'A' + 'a') : text[i];
    }
    return result;
}

static PyObject *get_uuid(Input *in, const Node *node) {
    Py_ssize_t size;
    if (get_length(in, &size) < 0) return NULL;
    const unsigned char *text = in->at;
    in->at += size;
    if (size == 36 && text[8] == '-' && text[13] == '-' && text[18] == '-' && text[23] == '-') {
        uint64_t half[2] = {0, 0};
        int digits = 0;
        for (Py_ssize_t i = 0; i < 36; i++) {
            if (i == 8 || i == 13 || i == 18 || i == 23) continue;
            int value = hex_value(text[i]);
            if (value < 0) break;
            half[digits / 16] = half[digits / 16] << 4 | (uint64_t)value;
            digits++;
        }
        if (digits == 32 && in->uuid_text) return uuid_text(text);
        if (digits == 32) return new_uuid(half[0], half[1]);
    }
    /* Any other text: UUID(text) decides (braces, "urn:uuid:", no hyphens... or its ValueError). */
    PyObject *string = PyUnicode_DecodeUTF8((const char *)text, size, "strict");
    if (string == NULL) return NULL;
    PyObject *result = PyObject_CallOneArg(node->slow, string);
    Py_DECREF(string);
    if (result != NULL && in->uuid_text) Py_SETREF(result, PyObject_Str(result));
    return result;
}

/* The text of a decimal's unscaled value with its exponent: "-1250E-2" reads as Decimal("-12.50"),
 * the digits and exponent fastavro's create_decimal(unscaled).scaleb(-scale) gives. */
static PyObject *get_decimal(Input *in, const Node *node) {
    Py_ssize_t size;
    if (get_length(in, &size) < 0) return NULL;
    const unsigned char *data = in->at;
    in->at += size;
    if (size >= 1 && size <= 16) {
        unsigned __int128 word = data[0] & 0x80 ? ~(unsigned __int128)0 : 0; /* sign-extended */
        for (Py_ssize_t i = 0; i < size; i++) word = word << 8 | data[i];
        __int128 unscaled = (__int128)word;
        unsigned __int128 magnitude = unscaled < 0 ? -word : word;
        char digits[48];
        int count = 0;
        do {
            digits[count++] = (char)('0' + (int)(magnitude % 10));
            magnitude /= 10;
        } while (magnitude);
        if (count <= node->precision) { /* else the context's rounding: fastavro's reader's */
            char text[64];
            int at = 0;
            if (unscaled < 0) text[at++] = '-';
            while (count) text[at++] = digits[--count];
            at += snprintf(text + at, sizeof(text) - at, "E-%d", node->scale);
            PyObject *string = PyUnicode_FromStringAndSize(text, at);
            if (string == NULL) return NULL;
            PyObject *result = PyObject_CallOneArg(decimal_type, string);
            Py_DECREF(string);
            return result;
        }
    }
    PyObject *raw = PyBytes_FromStringAndSize((const char *)data, size);
    if (raw == NULL) return NULL;
    PyObject *result = PyObject_CallOneArg(node->slow, raw);
    Py_DECREF(raw);
    return result;
}

static PyObject *get_value(Input *in, const Node *node);

static PyObject *get_record(Input *in, const Node *node) {
    PyObject *record = PyDict_New();
    if (record == NULL) return NULL;
    for (Py_ssize_t i = 0; i < node->count; i++) {
        PyObject *value = get_value(in, node->children[i]);
        if (value == NULL || PyDict_SetItem(record, PyTuple_GET_ITEM(node->names, i), value) < 0) {
            Py_XDECREF(value);
            Py_DECREF(record);
            return NULL;
        }
        Py_DECREF(value);
    }
    return record;
}

static PyObject *get_array(Input *in, const Node *node) {
    PyObject *items = PyList_New(0);
    if (items == NULL) return NULL;
    for (;;) {
        int64_t count;
        if (get_long(in, &count) < 0) goto failed;
        if (count == 0) return items;
        if (count < 0) { /* a block with its size in bytes, which a reader may use to skip it */
            int64_t bytes;
            if (count == INT64_MIN || get_long(in, &bytes) < 0) goto failed;
            count = -count;
        }
        if (count > in->end - in->at) { /* every item takes a byte, but an empty record's */
            PyErr_SetString(PyExc_EOFError, "an array block holds more items than bytes left");
            goto failed;
        }
        for (int64_t i = 0; i < count; i++) {
            PyObject *item = get_value(in, node->children[0]);
            if (item == NULL) goto failed;
            int appended = PyList_Append(items, item);
            Py_DECREF(item);
            if (appended < 0) goto failed;
        }
    }
failed:
    Py_DECREF(items);
    return NULL;
}

static PyObject *get_value(Input *in, const Node *node) {
    switch (node->op) {
    case OP_STRING: {
        Py_ssize_t size;
        if (get_length(in, &size) < 0) return NULL;
        const char *text = (const char *)in->at;
        in->at += size;
        return PyUnicode_DecodeUTF8(text, size, "strict");
    }
    case OP_LONG: {
        int64_t number;
        if (get_long(in, &number) < 0) return NULL;
        return PyLong_FromLongLong(number);
    }
    case OP_DOUBLE: {
        if (in->end - in->at < 8) return truncated(), NULL;
        double number = PyFloat_Unpack8((const char *)in->at, 1);
        in->at += 8;
        if (number == -1.0 && PyErr_Occurred()) return NULL;
        return PyFloat_FromDouble(number);
    }
    case OP_BOOLEAN:
        if (in->at >= in->end) return truncated(), NULL;
        return PyBool_FromLong(*in->at++ != 0);
    case OP_RECORD:
        return get_record(in, node);
    case OP_ENUM: {
        Py_ssize_t index;
        if (get_index(in, PyTuple_GET_SIZE(node->symbols), &index) < 0) return NULL;
        return Py_NewRef(PyTuple_GET_ITEM(node->symbols, index));
    }
    case OP_ARRAY:
        return get_array(in, node);
    case OP_OPTIONAL: {
        Py_ssize_t branch;
        if (get_index(in, 2, &branch) < 0) return NULL;
        return branch == 0 ? Py_NewRef(Py_None) : get_value(in, node->children[0]);
    }
    case OP_DECIMAL:
        return get_decimal(in, node);
    case OP_DATE:
        return get_date(in, node);
    case OP_TIMESTAMP_MICROS:
        return get_timestamp_micros(in, node);
    case OP_TIME_MICROS:
        return get_time_micros(in, node);
    case OP_UUID:
        return get_uuid(in, node);
    default:
        PyErr_SetString(PyExc_SystemError, "unknown program node");
        return NULL;
    }
}

/* ---- the Reader type ------------------------------------------------------------------------ */

static PyObject *Reader_new(PyTypeObject *type, PyObject *args, PyObject *kwargs) {
    static char *names[] = {"program", "max_depth", "errors", "uuid_text", NULL};
    PyObject *program, *errors;
    int max_depth, uuid_text = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "OiO|$p", names, &program, &max_depth, &errors,
                                     &uuid_text)) {
        return NULL;
    }
    Node *root = node_parse(program, 0, max_depth);
    if (root == NULL) return NULL;
    if (root->op != OP_RECORD) {
        node_free(root);
        PyErr_SetString(PyExc_ValueError, "a program's root is a record");
        return NULL;
    }
    Reader *self = (Reader *)type->tp_alloc(type, 0);
    if (self == NULL) {
        node_free(root);
        return NULL;
    }
    self->root = root;
    self->errors = Py_NewRef(errors);
    self->uuid_text = uuid_text;
    return (PyObject *)self;
}

static void Reader_dealloc(Reader *self) {
    node_free(self->root);
    Py_XDECREF(self->errors);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

/* The body of `value` from `offset`: where it starts and ends; -1 with an error if none. */
static int body_of(PyObject *value, Py_ssize_t offset, Input *in) {
    if (!PyBytes_Check(value)) {
        PyErr_SetString(PyExc_TypeError, "a value must be bytes");
        return -1;
    }
    Py_ssize_t size = PyBytes_GET_SIZE(value);
    if (offset < 0 || offset > size) return truncated();
    in->at = (const unsigned char *)PyBytes_AS_STRING(value) + offset;
    in->end = (const unsigned char *)PyBytes_AS_STRING(value) + size;
    return 0;
}

static PyObject *Reader_read(Reader *self, PyObject *args) {
    PyObject *value;
    Py_ssize_t offset;
    if (!PyArg_ParseTuple(args, "On", &value, &offset)) return NULL;
    Input in = {.uuid_text = self->uuid_text};
    if (body_of(value, offset, &in) < 0) return NULL;
    return get_record(&in, self->root);
}

/* After a value failed: its error, as (index, exception), added to `failures` when it is one of
 * the reader's `errors`; 0 when it was, -1 (the error left set) when it must propagate. */
static int failed(Reader *self, PyObject *failures, Py_ssize_t index) {
    if (!PyErr_ExceptionMatches(self->errors)) return -1;
    PyObject *type, *exception, *traceback;
    PyErr_Fetch(&type, &exception, &traceback);
    PyErr_NormalizeException(&type, &exception, &traceback);
    Py_XDECREF(type);
    Py_XDECREF(traceback);
    PyObject *entry = Py_BuildValue("(nN)", index, exception);
    if (entry == NULL) return -1;
    int appended = PyList_Append(failures, entry);
    Py_DECREF(entry);
    return appended;
}

/* The collector is paused while a batch is read: every container made is reachable from the
 * result, none is garbage yet, and a batch of 5000 records makes tens of thousands of them (row
 * dicts, lists, UUIDs), which would set off collections that walk all of them, and every older
 * object, again and again: it cost three quarters of the reader's time (bench/decode_bench.py).
 * Resumed after, the collector meets them once. */
static PyObject *Reader_read_rows_collected(Reader *self, PyObject *values, Py_ssize_t offset);
static PyObject *Reader_read_columns_collected(Reader *self, PyObject *values, Py_ssize_t offset);

static PyObject *paused(Reader *self, PyObject *args,
                        PyObject *(*read)(Reader *, PyObject *, Py_ssize_t)) {
    PyObject *values;
    Py_ssize_t offset;
    if (!PyArg_ParseTuple(args, "O!n", &PyList_Type, &values, &offset)) return NULL;
    int was_enabled = PyGC_Disable();
    PyObject *result = read(self, values, offset);
    if (was_enabled) PyGC_Enable();
    return result;
}

static PyObject *Reader_read_rows(Reader *self, PyObject *args) {
    return paused(self, args, Reader_read_rows_collected);
}

static PyObject *Reader_read_columns(Reader *self, PyObject *args) {
    return paused(self, args, Reader_read_columns_collected);
}

static PyObject *Reader_read_rows_collected(Reader *self, PyObject *values, Py_ssize_t offset) {
    Py_ssize_t count = PyList_GET_SIZE(values);
    PyObject *rows = PyList_New(count), *failures = PyList_New(0);
    if (rows == NULL || failures == NULL) goto error;
    for (Py_ssize_t i = 0; i < count && i < PyList_GET_SIZE(values); i++) {
        /* No Python code runs while a value is read but fastavro's readers of edge cases: the
         * value is held all the same, should one of them change the list. */
        PyObject *value = Py_NewRef(PyList_GET_ITEM(values, i));
        Input in = {.uuid_text = self->uuid_text};
        PyObject *row = body_of(value, offset, &in) < 0 ? NULL : get_record(&in, self->root);
        Py_DECREF(value);
        if (row == NULL) {
            if (failed(self, failures, i) < 0) goto error;
            row = Py_NewRef(Py_None);
        }
        PyList_SET_ITEM(rows, i, row);
    }
    for (Py_ssize_t i = PyList_GET_SIZE(values); i < count; i++) {
        PyList_SET_ITEM(rows, i, Py_NewRef(Py_None)); /* the list shrank: never read */
    }
    return Py_BuildValue("(NN)", rows, failures);
error:
    Py_XDECREF(rows);
    Py_XDECREF(failures);
    return NULL;
}

static PyObject *Reader_read_columns_collected(Reader *self, PyObject *values,
                                               Py_ssize_t offset) {
    const Node *root = self->root;
    PyObject *columns = PyTuple_New(root->count), *failures = PyList_New(0);
    PyObject **row = PyMem_Calloc(root->count ? root->count : 1, sizeof(PyObject *));
    if (columns == NULL || failures == NULL || row == NULL) goto error;
    for (Py_ssize_t f = 0; f < root->count; f++) {
        PyObject *column = PyList_New(0);
        if (column == NULL) goto error;
        PyTuple_SET_ITEM(columns, f, column);
    }
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(values); i++) {
        PyObject *value = Py_NewRef(PyList_GET_ITEM(values, i));
        Input in = {.uuid_text = self->uuid_text};
        Py_ssize_t read = 0;
        if (body_of(value, offset, &in) == 0) {
            /* A row's fields are kept aside until all are read: a value that fails midway leaves
             * the columns as they were. */
            for (; read < root->count; read++) {
                row[read] = get_value(&in, root->children[read]);
                if (row[read] == NULL) break;
            }
        }
        Py_DECREF(value);
        int ok = read == root->count;
        for (Py_ssize_t f = 0; f < read; f++) {
            if (ok && PyList_Append(PyTuple_GET_ITEM(columns, f), row[f]) < 0) ok = -1;
            Py_CLEAR(row[f]);
        }
        if (ok < 0) goto error;
        if (!ok && failed(self, failures, i) < 0) goto error;
    }
    PyMem_Free(row);
    return Py_BuildValue("(NN)", columns, failures);
error:
    PyMem_Free(row);
    Py_XDECREF(columns);
    Py_XDECREF(failures);
    return NULL;
}

static PyMethodDef Reader_methods[] = {
    {"read", (PyCFunction)Reader_read, METH_VARARGS,
     "read(value, offset) -> dict: the record of value[offset:]."},
    {"read_rows", (PyCFunction)Reader_read_rows, METH_VARARGS,
     "read_rows(values, offset) -> (rows, failures): a dict per value (None where it failed)."},
    {"read_columns", (PyCFunction)Reader_read_columns, METH_VARARGS,
     "read_columns(values, offset) -> (columns, failures): a list per top-level field."},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject ReaderType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "inlet.codec._avro_native_reader.Reader",
    .tp_doc = "Reader(program, max_depth, errors): decodes Avro bodies of one record schema.",
    .tp_basicsize = sizeof(Reader),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_new = Reader_new,
    .tp_dealloc = (destructor)Reader_dealloc,
    .tp_methods = Reader_methods,
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "inlet.codec._avro_native_reader",
    .m_doc = "Avro binary decoding of batches of one schema (see _avro_reader.py).",
    .m_size = -1,
};

static PyObject *attribute_of(const char *module_name, const char *name) {
    PyObject *module = PyImport_ImportModule(module_name);
    if (module == NULL) return NULL;
    PyObject *found = PyObject_GetAttrString(module, name);
    Py_DECREF(module);
    return found;
}

PyMODINIT_FUNC PyInit__avro_native_reader(void) {
    PyDateTime_IMPORT;
    if (PyDateTimeAPI == NULL) return NULL;
    if (decimal_type == NULL) { /* once: m_size -1, the module is never re-initialised */
        decimal_type = attribute_of("decimal", "Decimal");
        uuid_type = attribute_of("uuid", "UUID");
        PyObject *safe = attribute_of("uuid", "SafeUUID");
        uuid_unknown = safe ? PyObject_GetAttrString(safe, "unknown") : NULL;
        Py_XDECREF(safe);
        str_int = PyUnicode_InternFromString("int");
        str_is_safe = PyUnicode_InternFromString("is_safe");
        if (decimal_type == NULL || uuid_type == NULL || uuid_unknown == NULL ||
            str_int == NULL || str_is_safe == NULL || !PyType_Check(uuid_type)) {
            Py_CLEAR(decimal_type);
            Py_CLEAR(uuid_type);
            Py_CLEAR(uuid_unknown);
            Py_CLEAR(str_int);
            Py_CLEAR(str_is_safe);
            if (!PyErr_Occurred()) PyErr_SetString(PyExc_TypeError, "uuid.UUID is not a type");
            return NULL;
        }
    }
    if (PyType_Ready(&ReaderType) < 0) return NULL;
    PyObject *m = PyModule_Create(&module);
    if (m == NULL) return NULL;
    Py_INCREF(&ReaderType);
    if (PyModule_AddObject(m, "Reader", (PyObject *)&ReaderType) < 0) {
        Py_DECREF(&ReaderType);
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
