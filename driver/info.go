package driver

import "time"

// Info is the container description Docker sends with StartLogging (moby's
// logger.Info, with Go field names as JSON keys). ContainerEnv holds the whole
// environment, secrets included: it is used only to select attrs and is never
// logged or stored.
type Info struct {
	Config              map[string]string `json:"Config"`
	ContainerID         string            `json:"ContainerID"`
	ContainerName       string            `json:"ContainerName"`
	ContainerEntrypoint string            `json:"ContainerEntrypoint"`
	ContainerArgs       []string          `json:"ContainerArgs"`
	ContainerImageID    string            `json:"ContainerImageID"`
	ContainerImageName  string            `json:"ContainerImageName"`
	ContainerCreated    time.Time         `json:"ContainerCreated"`
	ContainerEnv        []string          `json:"ContainerEnv"`
	ContainerLabels     map[string]string `json:"ContainerLabels"`
	LogPath             string            `json:"LogPath"`
	DaemonName          string            `json:"DaemonName"`
}

// StartRequest is the body of /LogDriver.StartLogging.
type StartRequest struct {
	File string `json:"File"`
	Info Info   `json:"Info"`
}

// StopRequest is the body of /LogDriver.StopLogging.
type StopRequest struct {
	File string `json:"File"`
}

// savedStream is what the streams folder keeps for one FIFO so that a
// restarted plugin can re-attach to it: no environment, only the attrs the
// log-opts selected from it.
type savedStream struct {
	File          string            `json:"file"`
	Config        map[string]string `json:"config"`
	ContainerID   string            `json:"container_id"`
	ContainerName string            `json:"container_name"`
	ImageName     string            `json:"image_name"`
	ImageID       string            `json:"image_id"`
	DaemonName    string            `json:"daemon_name"`
	Attrs         map[string]string `json:"attrs,omitempty"`
}
