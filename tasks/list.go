package tasks

import (
	"fmt"
	"slices"
	"strconv"
)

// DefaultPageSize is the page size of List when the caller gives none.
const DefaultPageSize = 50

func sortNewestFirst(ts []*Task) {
	slices.SortFunc(ts, func(a, b *Task) int {
		if c := b.CreatedAt.Compare(a.CreatedAt); c != 0 {
			return c
		}
		return compareStrings(a.ID, b.ID)
	})
}

func compareStrings(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// page cuts one page out of sorted tasks; the cursor is the offset.
func page(all []*Task, cursor string, limit int) ([]*Task, string, error) {
	if limit <= 0 {
		limit = DefaultPageSize
	}
	start := 0
	if cursor != "" {
		n, err := strconv.Atoi(cursor)
		if err != nil || n < 0 || n > len(all) {
			return nil, "", fmt.Errorf("invalid cursor %q", cursor)
		}
		start = n
	}
	end := min(start+limit, len(all))
	out := make([]*Task, 0, end-start)
	for _, t := range all[start:end] {
		out = append(out, clone(t))
	}
	next := ""
	if end < len(all) {
		next = strconv.Itoa(end)
	}
	return out, next, nil
}
