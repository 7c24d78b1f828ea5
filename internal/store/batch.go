package store

import "strings"

// maxParams bounds the parameters of one statement, well under what
// either database accepts (SQLite 32,766, PostgreSQL 65,535).
const maxParams = 16000

// inBatches calls fn with consecutive runs of items, each small enough
// that width parameters per item fit in one statement.
func inBatches[T any](items []T, width int, fn func([]T) error) error {
	n := max(1, maxParams/width)
	for len(items) > 0 {
		k := min(n, len(items))
		if err := fn(items[:k]); err != nil {
			return err
		}
		items = items[k:]
	}
	return nil
}

// valueRows spells the VALUES of a multi-row insert: n rows of width
// placeholders, "(?, ?), (?, ?)".
func valueRows(n, width int) string {
	row := "(" + placeholders(width) + ")"
	var b strings.Builder
	b.Grow(n * (len(row) + 2))
	for i := 0; i < n; i++ {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(row)
	}
	return b.String()
}

// int64Args turns ids into statement arguments.
func int64Args(ids []int64) []any {
	args := make([]any, len(ids))
	for i, id := range ids {
		args[i] = id
	}
	return args
}
