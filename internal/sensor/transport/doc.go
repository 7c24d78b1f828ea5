// Package transport carries a node sensor's events to the Bulwark server:
// it enrols the sensor (trading an enrolment token for the sensor's own
// credential, kept in the state directory), cuts events into batches,
// buffers every batch on disk in a bounded spool, and sends the spool,
// oldest first, over HTTPS until the server has accepted each batch.
//
// Nothing is lost silently. Events the spool has no room for are dropped,
// counted and reported in the Dropped field of a later batch; batches the
// server refuses for good (400, 413) are discarded and counted as rejected;
// a spool file that cannot be read is set aside and counted. Batches left
// in the spool by a previous run are sent on start, and since a batch keeps
// its ID on disk, one sent twice (a response lost to a crash or a timeout)
// is stored once by the server.
//
// The package owns the sensor side of the protocol only: the message format
// is package wire's, and what a sensor observes is package probe's.
package transport
