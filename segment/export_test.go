package segment

// Bounds repeated from the driver, for maxrecord_test.go (package
// segment_test, which may import the driver's packages).
const (
	MaxLogLineForTest = maxLogLine
	MaxSourceForTest  = maxSource
	MaxAttrsForTest   = maxAttrs
)
