/*
 * Messages on control.sock between tinyvexctl and writerd.  One request,
 * one reply, then the client may send another or close.
 */
#ifndef TINYVEX_PROTO_CTL_H
#define TINYVEX_PROTO_CTL_H

#define CTL_VERSION		1
#define CTL_MAX_FRAME		(64 * 1024)	/* a request */
#define CTL_MAX_REPLY		(8 * 1024 * 1024)
#define CTL_MAX_ARGS		8
#define CTL_MAX_ARG_LEN		4096
#define CTL_MAX_CLIENTS		16

enum ctl_type {
	/*
	 * tinyvexctl → writerd
	 *   u32 version      CTL_VERSION
	 *   str command      e.g. "stats", "schema reload"
	 *   array args       of str (≤ CTL_MAX_ARGS, each ≤ CTL_MAX_ARG_LEN)
	 */
	CTL_REQUEST = 100,
	/*
	 * writerd → tinyvexctl
	 *   bool ok
	 *   str  result      JSON object text; on failure {"error": "..."}
	 */
	CTL_REPLY = 101,
};

#endif
