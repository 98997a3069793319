package segment

// Permissions of everything this package creates in the spool.
const (
	filePerm = 0o600
	dirPerm  = 0o700
)
