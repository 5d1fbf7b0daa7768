package main

import (
	"bytes"
	"io"
	"strings"
	"testing"
)

func TestParseFlags(t *testing.T) {
	for _, tc := range []struct {
		args []string
		err  string
	}{
		{nil, ""},
		{[]string{"--concurrency", "1,2", "--requests", "10"}, ""},
		{[]string{"--concurrency", "0"}, "--concurrency"},
		{[]string{"--concurrency", "2000"}, "--concurrency"},
		{[]string{"--requests", "0"}, "--requests"},
		{[]string{"--max-time", "1h"}, "--max-time"},
		{[]string{"--max-batch", "1"}, "--max-batch"},
		{[]string{"extra"}, "unexpected"},
	} {
		_, err := parseFlags(tc.args, io.Discard)
		if tc.err == "" && err != nil || tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)) {
			t.Errorf("%v: error %v, want %q", tc.args, err, tc.err)
		}
	}
}

// TestLoadtest runs a small load on the built-in model: every row is
// there, requests well below the places (one session, batches of 2, a
// queue of 4: 5 or 6 places; a client's next request may come before
// the server has given back its last one's place, hence twice) are all
// answered, and concurrency 16 gets 429s.
func TestLoadtest(t *testing.T) {
	var out bytes.Buffer
	err := run([]string{"--requests", "40", "--concurrency", "1,2,16", "--max-batch", "2", "--queue", "4",
		"--sessions", "1", "--threads-per-session", "1", "--max-time", "20s"}, &out, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	rows := map[string]string{}
	for _, l := range strings.Split(out.String(), "\n") {
		if f := strings.Split(l, " | "); len(f) == 9 && f[0] != "| batching" && !strings.HasPrefix(f[0], "|--") {
			rows[strings.Fields(f[0])[1]+" "+f[1]] = l
		}
	}
	for _, key := range []string{"off 1", "off 2", "on 1", "on 2"} {
		if r := rows[key]; !strings.Contains(r, " 40 |") || !strings.Contains(r, "| none |") {
			t.Errorf("batching %s: %q, want 40 requests and no errors", key, r)
		}
	}
	if r := rows["off 16"]; !strings.Contains(r, "429: ") {
		t.Errorf("batching off at concurrency 16 with 5 places: %q, want 429s", r)
	}
	if len(rows) != 6 {
		t.Errorf("%d rows, want 6:\n%s", len(rows), out.String())
	}
}
