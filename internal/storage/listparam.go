package storage

import (
	"encoding/json"
	"strconv"
)

// A list argument (event IDs, senders, types) is bound as one parameter
// holding a JSON array, not spread over one placeholder per element: the
// query text then stays the same whatever the list's length, so each query
// is one cached prepared statement, and there is no limit on parameters
// (SQLite's is 32766). These two functions are the only place that knows
// how; on PostgreSQL the fragment becomes
// IN (SELECT json_array_elements_text($n::json)).

// inList is the condition "is an element of the list bound as $n", for
// text columns.
func inList(n int) string { return "IN (SELECT value FROM json_each($" + strconv.Itoa(n) + "))" }

// listArg encodes a list for inList. The strings come from JSON (event
// content, account data) or the code, so they are valid UTF-8 and encode
// unchanged.
func listArg(vals []string) string {
	if len(vals) == 0 {
		return "[]" // not "null", which json_each reads as one element
	}
	b, _ := json.Marshal(vals) // a []string always encodes
	return string(b)
}
