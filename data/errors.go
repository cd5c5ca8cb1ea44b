package data

import (
	"errors"
	"io/fs"
	"strings"
)

// Setting is a value given to a loader that an error asks to change.
type Setting int

const (
	// SettingDir is the dataset's location: the folder (or, for a
	// download, the folder to use instead).
	SettingDir Setting = iota
	// SettingSize is the size images are resized to (FolderOptions.Size,
	// 0 to keep their size).
	SettingSize
)

// String describes the setting in words, without naming an option or flag.
func (s Setting) String() string {
	if s == SettingSize {
		return "the image size"
	}
	return "the dataset folder"
}

// LocationError says what is wrong with a dataset location and how to fix
// it, in terms of values: which setting to change (Setting) and what it
// should be (Want). A front end that knows which option or flag carries the
// setting can word the fix with it (see Fix); Error words it plainly.
type LocationError struct {
	Root    string  // the dataset location the loader was given
	Path    string  // the folder or file at fault ("" for none)
	Problem string  // what is wrong
	Setting Setting // what to change
	// Want is what the setting should be: for SettingDir, what the folder
	// should be ("an image folder (...)"); for SettingSize, the change to
	// make ("resize them smaller"). "" when there is no fix to suggest.
	Want string
	// Download: leaving the location unset downloads the data instead.
	Download bool
	Err      error // the cause, if any
}

// Error is "path: problem; fix", the fix worded with Setting's description.
func (e *LocationError) Error() string { return e.Fix(e.Setting.String(), false) }

// Unwrap returns the cause.
func (e *LocationError) Unwrap() error { return e.Err }

// Fix is the message with the fix worded for a front end: name is what the
// user sets (a flag, say), flag whether it is a command-line flag ("pass
// NAME pointing at ...") rather than a description ("the dataset folder
// should be ...").
func (e *LocationError) Fix(name string, flag bool) string {
	var b strings.Builder
	if e.Path != "" {
		b.WriteString(e.Path + ": ")
	}
	b.WriteString(e.Problem)
	if e.Want == "" {
		return b.String()
	}
	switch {
	case e.Setting == SettingSize:
		b.WriteString("; " + e.Want + " (" + name + ")")
	case flag:
		b.WriteString("; pass " + name + " pointing at " + e.Want)
	default:
		b.WriteString("; " + name + " should be " + e.Want)
	}
	if e.Download {
		if flag {
			b.WriteString(", or omit it to download")
		} else {
			b.WriteString(", or left unset to download")
		}
	}
	return b.String()
}

// missingDir is the error for a dataset folder that os.Stat found missing
// (err != nil) or not a folder (err == nil); want says what it should be.
func missingDir(dir string, err error, want string) error {
	e := &LocationError{Root: dir, Path: dir, Problem: "folder not found", Want: want, Download: true, Err: err}
	if err == nil {
		e.Problem = "is a file, not a folder"
	} else if !errors.Is(err, fs.ErrNotExist) {
		e.Problem, e.Want, e.Download = "cannot open folder: "+errText(err), "", false
	}
	return e
}

// byHandError adds to a download error, whose message ends with how to get
// the data by hand, the dataset folder to use then.
func byHandError(err error, folder string) error {
	return &LocationError{Problem: err.Error(), Want: folder, Err: err}
}
