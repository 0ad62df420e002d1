package main

import (
	"encoding/json"
	"strings"
	"testing"
)

const records = `[{"id": "a", "n": 1},
  {"id": "b", "n": 2, "note": null}]`

func decode(t *testing.T, body []byte) map[string]any {
	t.Helper()
	var out map[string]any
	if err := json.Unmarshal(body, &out); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, body)
	}
	return out
}

func TestRawIsTheFileAsItIs(t *testing.T) {
	body, n, err := restFormat{format: formatRaw}.build([]byte(records))
	if err != nil || string(body) != records || n != 0 {
		t.Fatalf("got %q, %d, %v", body, n, err)
	}
}

func TestKafkaJSONWrapsEachRecordAsAValue(t *testing.T) {
	body, n, err := restFormat{format: formatKafkaJSON}.build([]byte(records))
	if err != nil || n != 2 {
		t.Fatalf("%d records, %v", n, err)
	}
	want := `{"records":[{"value":{"id":"a","n":1}},{"value":{"id":"b","n":2,"note":null}}]}`
	if string(body) != want {
		t.Fatalf("got  %s\nwant %s", body, want)
	}
}

func TestOneObjectIsOneRecord(t *testing.T) {
	body, n, err := restFormat{format: formatKafkaJSON, keyField: "id"}.build([]byte(`{"id": "x"}`))
	if err != nil || n != 1 || string(body) != `{"records":[{"key":"x","value":{"id":"x"}}]}` {
		t.Fatalf("got %s, %d, %v", body, n, err)
	}
}

func TestKafkaAvroNamesItsSchemaByIDOrText(t *testing.T) {
	byID, _, err := restFormat{format: formatKafkaAvro, valueSchemaID: 7}.build([]byte(records))
	if err != nil {
		t.Fatal(err)
	}
	if got := decode(t, byID)["value_schema_id"]; got != float64(7) {
		t.Fatalf("value_schema_id %v", got)
	}
	schema := `{"type": "record", "name": "R", "fields": [{"name": "id", "type": "string"}]}`
	f := restFormat{format: formatKafkaAvro, valueSchema: schema, keyField: "id", keySchema: `"string"`}
	byText, _, err := f.build([]byte(records))
	if err != nil {
		t.Fatal(err)
	}
	out := decode(t, byText)
	if out["value_schema"] != schema || out["key_schema"] != `"string"` {
		t.Fatalf("schemas %v / %v", out["value_schema"], out["key_schema"])
	}
	first := out["records"].([]any)[0].(map[string]any)
	if first["key"] != "a" {
		t.Fatalf("key %v", first["key"])
	}
}

func TestKafkaAvroWithoutASchemaIsRefused(t *testing.T) {
	_, _, err := restFormat{format: formatKafkaAvro}.build([]byte(records))
	if err == nil || !strings.Contains(err.Error(), "-value-schema") {
		t.Fatalf("got %v", err)
	}
	_, _, err = restFormat{format: formatKafkaAvro, valueSchemaID: 1, keyField: "id"}.build([]byte(records))
	if err == nil || !strings.Contains(err.Error(), "-key-schema") {
		t.Fatalf("a key without its schema: got %v", err)
	}
}

func TestAMissingKeyFieldIsRefused(t *testing.T) {
	_, _, err := restFormat{format: formatKafkaJSON, keyField: "nope"}.build([]byte(records))
	if err == nil || !strings.Contains(err.Error(), `record 0: no key field "nope"`) {
		t.Fatalf("got %v", err)
	}
}
