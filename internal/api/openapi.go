package api

import (
	_ "embed"
	"net/http"
)

// openAPIDocument describes every route; a test checks the two agree.
//
//go:embed openapi.json
var openAPIDocument []byte

func (s *Server) openapi(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Write(openAPIDocument)
}
