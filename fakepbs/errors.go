package fakepbs

// errorTexts are OpenPBS's client texts for the errors the server returns
// (src/lib/Liblog/pbs_messages.c). Some carry a trailing space on purpose:
// the commands print "<cmd>: <text> <id>", so "Unauthorized Request " shows
// two spaces before the id, as OpenPBS does.
var errorTexts = map[int]string{
	ErrUnknownJob:      "Unknown Job Id",
	ErrInvalidRequest:  "Invalid request",
	ErrPermission:      "Unauthorized Request ",
	ErrInternal:        "PBS server internal error",
	ErrUnknownSignal:   "Unknown/illegal signal name",
	ErrBadAttrValue:    "Illegal attribute or resource value",
	ErrBadState:        "Request invalid for state of job",
	ErrUnknownQueue:    "Unknown queue",
	ErrQueueDisabled:   "Queue is not enabled",
	ErrNotSupported:    "No support for requested service",
	ErrUnknownResource: "Unknown resource",
	ErrBadDepend:       "Invalid Job Dependency",
	ErrUnknownNode:     "Unknown node ",
	ErrPlaceNoSelect:   `Cannot have "place" without "select"`,
	ErrJobFinished:     "Job has finished",
}

// ErrorText returns OpenPBS's message text for a pbs_errno, or "" when the
// server does not use that code.
func ErrorText(code int) string { return errorTexts[code] }

// pbsErr builds an *Error with OpenPBS's text for code.
func pbsErr(code int, id string) *Error {
	return &Error{Code: code, Text: errorTexts[code], JobID: id}
}

// attrErr is an error about an attribute: OpenPBS's reply_badattr puts the
// attribute's name after the text, and qsub prints the whole reply.
func attrErr(code int, attr string) *Error {
	return &Error{Code: code, Text: errorTexts[code] + " " + attr}
}
