//go:build !unix

package agent

// harden does nothing on Windows, which writes no core dumps of a console
// program unless Windows Error Reporting is set up to keep them.
func harden() error { return nil }
