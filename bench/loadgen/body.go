package main

// Request bodies in the Confluent REST proxy's v2 produce format (POST /topics/{topic}), which
// the Strimzi Kafka Bridge and Karapace's REST proxy also speak: bench/peers_bench.py sends the
// records it sends Inlet to such a peer, through the same generator.
//
//	{"records":[{"value":{...}}, ...]}                                   application/vnd.kafka.json.v2+json
//	{"value_schema_id":7,"records":[{"value":{...}}, ...]}               application/vnd.kafka.avro.v2+json
//	{"value_schema":"{...}","records":[{"key":"k","value":{...}}, ...]}  (the schema's text instead of its id)
//
// The body is built once, from a file of records (a JSON array, or one JSON object for one record),
// before any request is sent: it costs the measured run nothing.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
)

// Body formats (-body-format).
const (
	formatRaw       = "raw"        // the file is the body, as it is
	formatKafkaJSON = "kafka-json" // REST proxy v2, JSON values
	formatKafkaAvro = "kafka-avro" // REST proxy v2, Avro values (JSON-encoded, with a schema)
)

// restFormat is how records are wrapped for a REST proxy.
type restFormat struct {
	format        string
	keyField      string // each record's key: this field's value ("" = no key)
	valueSchemaID int    // kafka-avro: the registered value schema's id, or
	valueSchema   string // its text
	keySchemaID   int    // kafka-avro with a key: the key schema's id, or
	keySchema     string // its text
}

// contentType is the format's Content-Type ("" for raw: the -content-type flag's).
func (f restFormat) contentType() string {
	switch f.format {
	case formatKafkaJSON:
		return "application/vnd.kafka.json.v2+json"
	case formatKafkaAvro:
		return "application/vnd.kafka.avro.v2+json"
	}
	return ""
}

// accept is the Accept header: the REST proxies answer in their own v2 type.
func (f restFormat) accept() string {
	if f.format == formatRaw {
		return "*/*"
	}
	return "application/vnd.kafka.v2+json, application/json"
}

// build turns the records file into the request body.
func (f restFormat) build(records []byte) ([]byte, int, error) {
	if f.format == formatRaw {
		return records, 0, nil
	}
	if f.format != formatKafkaJSON && f.format != formatKafkaAvro {
		return nil, 0, fmt.Errorf("unknown body format %q (raw, kafka-json or kafka-avro)", f.format)
	}
	values, err := recordsOf(records)
	if err != nil {
		return nil, 0, err
	}
	var b bytes.Buffer
	b.WriteByte('{')
	if f.format == formatKafkaAvro {
		if err := schemaMember(&b, "value", f.valueSchemaID, f.valueSchema, true); err != nil {
			return nil, 0, err
		}
		if err := schemaMember(&b, "key", f.keySchemaID, f.keySchema, f.keyField != ""); err != nil {
			return nil, 0, err
		}
	}
	b.WriteString(`"records":[`)
	for i, value := range values {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteByte('{')
		if f.keyField != "" {
			key, err := fieldOf(value, f.keyField)
			if err != nil {
				return nil, 0, fmt.Errorf("record %d: %w", i, err)
			}
			b.WriteString(`"key":`)
			b.Write(key)
			b.WriteByte(',')
		}
		b.WriteString(`"value":`)
		b.Write(value)
		b.WriteByte('}')
	}
	b.WriteString("]}")
	return b.Bytes(), len(values), nil
}

// schemaMember writes "<side>_schema_id":N, or "<side>_schema":"<text>", and a comma.
func schemaMember(b *bytes.Buffer, side string, id int, text string, needed bool) error {
	switch {
	case id > 0:
		fmt.Fprintf(b, `"%s_schema_id":%s,`, side, strconv.Itoa(id))
	case text != "":
		quoted, _ := json.Marshal(text) // a string always marshals
		fmt.Fprintf(b, `"%s_schema":%s,`, side, quoted)
	case needed:
		return fmt.Errorf("kafka-avro needs -%s-schema-id or -%s-schema", side, side)
	}
	return nil
}

// recordsOf reads a JSON array of records, or one record, each kept as its own bytes (compacted).
func recordsOf(data []byte) ([]json.RawMessage, error) {
	trimmed := bytes.TrimSpace(data)
	if len(trimmed) > 0 && trimmed[0] == '{' {
		trimmed = append(append([]byte{'['}, trimmed...), ']')
	}
	var values []json.RawMessage
	if err := json.Unmarshal(trimmed, &values); err != nil {
		return nil, fmt.Errorf("the records file must hold a JSON array or object: %w", err)
	}
	for i, v := range values {
		var compact bytes.Buffer
		if err := json.Compact(&compact, v); err != nil {
			return nil, err
		}
		values[i] = compact.Bytes()
	}
	return values, nil
}

// fieldOf is a record's field, as the JSON it was written as.
func fieldOf(record json.RawMessage, name string) (json.RawMessage, error) {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(record, &fields); err != nil {
		return nil, fmt.Errorf("a record with a key must be a JSON object: %w", err)
	}
	value, ok := fields[name]
	if !ok {
		return nil, fmt.Errorf("no key field %q", name)
	}
	return value, nil
}
