package tasks

import "time"

// MemoryOptions configures NewMemoryWith. The zero value means defaults.
type MemoryOptions struct {
	// Now is the store's clock (default time.Now). It decides when tasks
	// expire and stamps UpdatedAt; tests set it to expire tasks without
	// waiting.
	Now func() time.Time
	// MaxJournalBytes bounds each task's journal (default
	// DefaultMaxJournalBytes).
	MaxJournalBytes int64
}

// NewMemoryWith returns an empty in-memory store configured by opts.
func NewMemoryWith(opts MemoryOptions) *Memory {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.MaxJournalBytes <= 0 {
		opts.MaxJournalBytes = DefaultMaxJournalBytes
	}
	return &Memory{
		tasks:      make(map[string]*memTask),
		watches:    make(map[*memWatch]struct{}),
		queue:      newMemQueue(),
		now:        opts.Now,
		maxJournal: opts.MaxJournalBytes,
	}
}
