package vending

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
)

// checkExactKeys refuses what encoding/json would silently take in a flat JSON object: a key given twice (the decoder
// keeps the last) and a key that names a field in another case ("THINGNAME", which the decoder matches to thingName).
// Syntax errors are left to the decoder, which describes them.
func checkExactKeys(body []byte, v any) error {
	fields := map[string]string{} // lower-case → exact
	t := reflect.TypeOf(v)
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	for i := 0; i < t.NumField(); i++ {
		name := strings.Split(t.Field(i).Tag.Get("json"), ",")[0]
		fields[strings.ToLower(name)] = name
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil
	}
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil
		}
		key, _ := tok.(string)
		if seen[key] {
			return fmt.Errorf("key %q appears more than once", truncate(key, 40))
		}
		seen[key] = true
		if exact, ok := fields[strings.ToLower(key)]; ok && exact != key {
			return fmt.Errorf("unknown field %q: keys are case-sensitive, write %q", truncate(key, 40), exact)
		}
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			return nil
		}
	}
	return nil
}
