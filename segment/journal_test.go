package segment

import (
	"log/slog"
	"testing"
)

// TestJournalRoom: journals count against Limit with the sealed segments,
// and get no room on a filesystem short of MinFree + JournalReserve.
func TestJournalRoom(t *testing.T) {
	const limit = 200 << 20
	s, err := Open(Config{Root: t.TempDir(), NoTicker: true, Limit: limit, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if r := s.JournalRoom(); r <= 0 || r > limit {
		t.Fatalf("empty spool: room %d, want (0, %d]", r, limit)
	}
	s.JournalGrew(150 << 20)
	if r := s.JournalRoom(); r <= 0 || r > 50<<20 {
		t.Errorf("150 MiB of journals: room %d, want (0, 50 MiB]", r)
	}
	s.JournalGrew(60 << 20)
	if r := s.JournalRoom(); r != 0 {
		t.Errorf("journals over the limit: room %d, want 0", r)
	}
	if got := s.Stats().JournalBytes; got != 210<<20 {
		t.Errorf("Stats().JournalBytes = %d, want %d", got, 210<<20)
	}
	s.JournalGrew(-210 << 20)
	if r := s.JournalRoom(); r <= 0 {
		t.Errorf("journals emptied: room %d", r)
	}

	full, err := Open(Config{Root: t.TempDir(), NoTicker: true, MinFree: 1 << 60, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer full.Close()
	if r := full.JournalRoom(); r != 0 {
		t.Errorf("filesystem below MinFree: room %d, want 0", r)
	}
}
