package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
)

// bufSize is the read buffer of each FIFO: a fill is one read(2) of up to
// this many bytes (a pipe returns at most what it holds).
const bufSize = 1 << 20

// defaultPipeSize is the FIFO capacity the plugin asks for by default: the
// 1 MiB s3logs asks for (Linux's default pipe-max-size).
const defaultPipeSize = 1 << 20

// discarder reads FIFOs to EOF and drops the bytes. Its methods are safe
// for concurrent use; each FIFO has one reader goroutine.
type discarder struct {
	log      *slog.Logger
	bufSize  int
	pipeSize int // FIFO capacity to ask for (F_SETPIPE_SZ); 0 leaves it

	// mu guards fifos.
	mu    sync.Mutex
	fifos map[string]*os.File
	wg    sync.WaitGroup

	discarded atomic.Int64 // bytes read from all FIFOs
}

func newDiscarder(log *slog.Logger, bufSize, pipeSize int) *discarder {
	return &discarder{log: log, bufSize: bufSize, pipeSize: pipeSize, fifos: make(map[string]*os.File)}
}

// growPipe asks for a FIFO capacity of size bytes (F_SETPIPE_SZ), as s3logs
// does (1 MiB), so the limit plugin gets the same pipe; failure is harmless.
// It goes through SyscallConn: File.Fd would make the FIFO blocking.
func growPipe(f *os.File, size int) {
	const fSetPipeSz = 1031 // F_SETPIPE_SZ, not in package syscall
	if rc, err := f.SyscallConn(); err == nil {
		rc.Control(func(fd uintptr) {
			syscall.Syscall(syscall.SYS_FCNTL, fd, fSetPipeSz, uintptr(size))
		})
	}
}

// pipeSize returns the FIFO capacity of f, or -1.
func pipeSize(f *os.File) int {
	const fGetPipeSz = 1032 // F_GETPIPE_SZ
	n := -1
	if rc, err := f.SyscallConn(); err == nil {
		rc.Control(func(fd uintptr) {
			r, _, errno := syscall.Syscall(syscall.SYS_FCNTL, fd, fGetPipeSz, 0)
			if errno == 0 {
				n = int(r)
			}
		})
	}
	return n
}

// start opens file and starts its reader goroutine.
func (d *discarder) start(file string) error {
	if file == "" {
		return errors.New("missing File")
	}
	// O_NONBLOCK puts the FIFO under Go's poller so closeAll can interrupt a
	// read; Docker holds the FIFO open read-write, so reads see EOF only
	// after Docker closed it and the pipe is drained.
	f, err := os.OpenFile(file, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return err
	}
	if d.pipeSize > 0 {
		growPipe(f, d.pipeSize)
	}
	d.mu.Lock()
	if _, dup := d.fifos[file]; dup {
		d.mu.Unlock()
		f.Close()
		return errors.New("FIFO already being read: " + file)
	}
	d.fifos[file] = f
	d.wg.Add(1)
	d.mu.Unlock()
	go d.drain(file, f)
	return nil
}

// drain reads f to EOF (or until closeAll) through a bufio.Reader and
// discards everything.
func (d *discarder) drain(file string, f *os.File) {
	defer d.wg.Done()
	br := bufio.NewReaderSize(f, d.bufSize)
	var n int64
	var err error
	for {
		if _, err = br.Peek(1); err != nil {
			break
		}
		k, _ := br.Discard(br.Buffered())
		n += int64(k)
		d.discarded.Add(int64(k))
	}
	if !errors.Is(err, io.EOF) && !errors.Is(err, os.ErrClosed) {
		d.log.Error("reading FIFO", "file", file, "err", err)
	}
	f.Close()
	d.mu.Lock()
	delete(d.fifos, file)
	d.mu.Unlock()
	d.log.Info("stream ended", "file", file, "bytes", n)
}

// streams returns the number of FIFOs being read.
func (d *discarder) streams() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.fifos)
}

// closeAll closes every FIFO and waits for the readers.
func (d *discarder) closeAll() {
	d.mu.Lock()
	for _, f := range d.fifos {
		f.Close()
	}
	d.mu.Unlock()
	d.wg.Wait()
}

// handler is the plugin API: the handlers decode, act and reply at once.
func (d *discarder) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /Plugin.Activate", func(w http.ResponseWriter, r *http.Request) {
		reply(w, map[string][]string{"Implements": {"LogDriver"}})
	})
	mux.HandleFunc("POST /LogDriver.StartLogging", func(w http.ResponseWriter, r *http.Request) {
		var req struct{ File string }
		err := json.NewDecoder(io.LimitReader(r.Body, 4<<20)).Decode(&req)
		if err == nil {
			err = d.start(req.File)
		}
		if err != nil {
			reply(w, errReply{Err: "nullplugin: " + err.Error()})
			return
		}
		reply(w, errReply{})
	})
	mux.HandleFunc("POST /LogDriver.StopLogging", func(w http.ResponseWriter, r *http.Request) {
		// Never an error and never a wait: Docker closes the FIFO only after
		// this reply, and the reader reads on to EOF by itself.
		reply(w, errReply{})
	})
	mux.HandleFunc("POST /LogDriver.Capabilities", func(w http.ResponseWriter, r *http.Request) {
		reply(w, map[string]map[string]bool{"Cap": {"ReadLogs": false}})
	})
	mux.HandleFunc("POST /LogDriver.ReadLogs", func(w http.ResponseWriter, r *http.Request) {
		reply(w, errReply{Err: "nullplugin: reading logs is not supported"})
	})
	return mux
}

// errReply is the protocol's reply to StartLogging and StopLogging.
type errReply struct {
	Err string `json:"Err"`
}

func reply(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/vnd.docker.plugins.v1+json")
	json.NewEncoder(w).Encode(v)
}
