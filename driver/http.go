package driver

import (
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
)

// maxBody bounds a request body; StartLogging bodies carry the container's
// environment and labels, which are small.
const maxBody = 4 << 20

// pluginContentType is the media type of plugin API replies.
const pluginContentType = "application/vnd.docker.plugins.v1+json"

// Handler returns the plugin's HTTP API. Handlers decode, call one Driver
// method and reply; errors go back as {"Err": "..."} with status 200 for
// StartLogging (as Docker's plugin helpers do) so the message reaches the
// user unchanged.
func Handler(d *Driver, log *slog.Logger) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /Plugin.Activate", func(w http.ResponseWriter, r *http.Request) {
		reply(w, map[string][]string{"Implements": {"LogDriver"}})
	})
	mux.HandleFunc("POST /LogDriver.StartLogging", func(w http.ResponseWriter, r *http.Request) {
		var req StartRequest
		if err := decode(r, &req); err != nil {
			reply(w, errReply{Err: "s3logs: bad StartLogging request: " + err.Error()})
			return
		}
		if err := d.StartLogging(req.File, req.Info); err != nil {
			log.Warn("StartLogging refused", "container", shortID(req.Info.ContainerID), "err", err)
			reply(w, errReply{Err: "s3logs: " + err.Error()})
			return
		}
		log.Info("StartLogging", "container", shortID(req.Info.ContainerID), "name", req.Info.ContainerName, "file", req.File)
		reply(w, errReply{})
	})
	mux.HandleFunc("POST /LogDriver.StopLogging", func(w http.ResponseWriter, r *http.Request) {
		// Never an error: Docker would leak the FIFO and the plugin reference.
		var req StopRequest
		if err := decode(r, &req); err != nil {
			log.Warn("bad StopLogging request", "err", err)
		} else {
			d.StopLogging(req.File)
		}
		reply(w, errReply{})
	})
	readLogs := d.cfg.ReadLogs != nil
	mux.HandleFunc("POST /LogDriver.Capabilities", func(w http.ResponseWriter, r *http.Request) {
		reply(w, map[string]map[string]bool{"Cap": {"ReadLogs": readLogs}})
	})
	if readLogs {
		mux.Handle("POST /LogDriver.ReadLogs", d.cfg.ReadLogs)
	} else {
		mux.HandleFunc("POST /LogDriver.ReadLogs", func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(http.StatusNotImplemented)
			reply(w, errReply{Err: "s3logs: reading logs back is off (plugin setting READ_LOGS); docker logs uses Docker's local cache"})
		})
	}
	return mux
}

// errReply is the protocol's reply to StartLogging and StopLogging.
type errReply struct {
	Err string `json:"Err"`
}

func decode(r *http.Request, v any) error {
	body := http.MaxBytesReader(nil, r.Body, maxBody)
	dec := json.NewDecoder(body)
	if err := dec.Decode(v); err != nil {
		if errors.Is(err, io.EOF) {
			return errors.New("empty body")
		}
		return err
	}
	return nil
}

func reply(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", pluginContentType)
	json.NewEncoder(w).Encode(v)
}
