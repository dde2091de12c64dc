//go:build !unix

package main

import "syscall"

func nobodyAttr() *syscall.SysProcAttr { return nil }
