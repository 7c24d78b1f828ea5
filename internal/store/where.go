package store

import "strings"

// conditions collects the terms of a query's WHERE clause and their
// arguments, in order.
type conditions struct {
	terms []string
	args  []any
}

// add appends a term and the arguments of its placeholders.
func (c *conditions) add(term string, args ...any) {
	c.terms = append(c.terms, term)
	c.args = append(c.args, args...)
}

// addIf appends the term when set.
func (c *conditions) addIf(set bool, term string, args ...any) {
	if set {
		c.add(term, args...)
	}
}

// sql is " WHERE t1 AND t2 …", or "" without terms.
func (c *conditions) sql() string {
	if len(c.terms) == 0 {
		return ""
	}
	return ` WHERE ` + strings.Join(c.terms, ` AND `)
}
