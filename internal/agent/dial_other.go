//go:build !unix

package agent

import (
	"context"
	"io"
	"net"
	"time"
)

func dial(ctx context.Context, socket string) (io.ReadWriteCloser, error) {
	d := net.Dialer{Timeout: DialTimeout}
	c, err := d.DialContext(ctx, "unix", socket)
	if err != nil {
		return nil, err
	}
	if dl, ok := ctx.Deadline(); ok {
		c.SetDeadline(dl)
	}
	context.AfterFunc(ctx, func() { c.SetDeadline(time.Now()) })
	return c, nil
}
