package cli

import (
	"bytes"
	"encoding/json"
	"io"
	"slices"
)

// logKeyOrder is the order of the keys of a JSON log line: what happened
// first, then the training figures in the order a reader scans them; any
// other key follows in the order it was logged.
var logKeyOrder = []string{"level", "time", "message", "exit_code", "epoch", "step", "loss", "accuracy",
	"val_loss", "val_accuracy", "lr", "images_per_s", "seconds"}

// consoleFieldsOrder is the order of the fields of a text log line (the
// ConsoleWriter prints level, time and message itself).
var consoleFieldsOrder = logKeyOrder[4:]

// orderedJSON rewrites each JSON object written to it (one per Write, as
// zerolog writes them) with its keys in logKeyOrder, and passes it on to
// w. A write that is not one JSON object passes through unchanged.
type orderedJSON struct{ w io.Writer }

func (o orderedJSON) Write(p []byte) (int, error) {
	line, ok := reorderJSON(p)
	if !ok {
		return o.w.Write(p)
	}
	if _, err := o.w.Write(line); err != nil {
		return 0, err
	}
	return len(p), nil
}

type jsonField struct {
	key string
	val json.RawMessage
}

// reorderJSON returns the object p with its keys in logKeyOrder and a
// newline, or false when p is not a single JSON object.
func reorderJSON(p []byte) ([]byte, bool) {
	dec := json.NewDecoder(bytes.NewReader(p))
	dec.UseNumber()
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return nil, false
	}
	var fields []jsonField
	for dec.More() {
		t, err := dec.Token()
		key, isKey := t.(string)
		var val json.RawMessage
		if err != nil || !isKey || dec.Decode(&val) != nil {
			return nil, false
		}
		fields = append(fields, jsonField{key, val})
	}
	if t, err := dec.Token(); err != nil || t != json.Delim('}') {
		return nil, false
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, false
	}
	rank := func(k string) int {
		if i := slices.Index(logKeyOrder, k); i >= 0 {
			return i
		}
		return len(logKeyOrder)
	}
	slices.SortStableFunc(fields, func(a, b jsonField) int { return rank(a.key) - rank(b.key) })
	out := make([]byte, 0, len(p)+1)
	out = append(out, '{')
	for i, f := range fields {
		if i > 0 {
			out = append(out, ',')
		}
		k, _ := json.Marshal(f.key)
		out = append(append(append(out, k...), ':'), f.val...)
	}
	return append(out, '}', '\n'), true
}
