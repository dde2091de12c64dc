//go:build !unix

package cache

import "os"

func inode(fi os.FileInfo) any { return nil }
