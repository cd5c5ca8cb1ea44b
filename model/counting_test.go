package model

import (
	"fmt"
	"sort"
	"strings"
	"sync"

	"github.com/trainer-go/trainer/device"
)

// countingBackend wraps a backend and keeps every buffer it hands out
// (Alloc, HostU8, HostI32) until Free, so a test can list what is still
// live; Free of a buffer it does not hold (a view, a double free) is
// recorded as a misuse. maxElems, when set, replaces Caps().MaxElems, so
// the CPU backend can stand in for the GPU's index limit; lazy claims a
// GPU's queued ops and lazy set-up (so WarmUp runs); failAt > 0 makes the
// failAt-th request (counting from the last reset of calls) fail with
// device.OutOfMemoryError.
type countingBackend struct {
	device.Backend
	maxElems int
	lazy     bool
	failAt   int
	calls    int

	mu     sync.Mutex
	live   map[device.Buffer]string // what each live buffer holds
	allocs int                      // buffers handed out in all
	sizes  map[string]int           // elements of every buffer handed out, by what
	misuse []string
}

func newCounting(b device.Backend) *countingBackend {
	return &countingBackend{Backend: b, live: map[device.Buffer]string{}, sizes: map[string]int{}}
}

func (c *countingBackend) Caps() device.Caps {
	caps := c.Backend.Caps()
	if c.maxElems > 0 {
		caps.MaxElems = c.maxElems
	}
	if c.lazy {
		caps.Async, caps.LazyInit = true, true
	}
	return caps
}

// fail says whether this request is the one that fails.
func (c *countingBackend) fail(what string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.calls++
	if c.calls == c.failAt {
		return &device.OutOfMemoryError{Device: "test", What: what}
	}
	return nil
}

func (c *countingBackend) keep(what string, buf device.Buffer, err error) (device.Buffer, error) {
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.live[buf] = what
	c.sizes[what] += buf.Len()
	c.allocs++
	return buf, nil
}

func (c *countingBackend) Alloc(what string, dt device.DType, n int) (device.Buffer, error) {
	if err := c.fail(what); err != nil {
		return nil, err
	}
	buf, err := c.Backend.Alloc(what, dt, n)
	return c.keep(what, buf, err)
}

func (c *countingBackend) HostU8(what string, src []uint8) (device.Buffer, error) {
	if err := c.fail(what); err != nil {
		return nil, err
	}
	buf, err := c.Backend.HostU8(what, src)
	return c.keep(what, buf, err)
}

func (c *countingBackend) HostI32(what string, src []int32) (device.Buffer, error) {
	if err := c.fail(what); err != nil {
		return nil, err
	}
	buf, err := c.Backend.HostI32(what, src)
	return c.keep(what, buf, err)
}

func (c *countingBackend) Free(buf device.Buffer) {
	c.mu.Lock()
	_, ok := c.live[buf]
	delete(c.live, buf)
	if !ok {
		c.misuse = append(c.misuse, fmt.Sprintf("Free of a buffer not live (a view, or freed twice) of %d elements", buf.Len()))
	}
	c.mu.Unlock()
	c.Backend.Free(buf)
}

// nLive is the number of live buffers.
func (c *countingBackend) nLive() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.live)
}

// leaks lists the live buffers and any misuse, "" when there is none.
func (c *countingBackend) leaks() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for _, what := range c.live {
		out = append(out, what)
	}
	sort.Strings(out)
	out = append(out, c.misuse...)
	return strings.Join(out, "; ")
}
