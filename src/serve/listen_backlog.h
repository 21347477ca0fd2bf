// The listening socket's backlog. Debian's cpp-httplib 0.11 is compiled
// with a backlog of 5 (CPPHTTPLIB_LISTEN_BACKLOG), too few for a burst of
// clients: at 32 connecting at once while the compute threads held both
// cores, the kernel refused some of them (the clients saw "connection
// reset by peer"). Calling listen() again on a listening socket sets a new
// backlog (Linux), so the server raises it once httplib has bound.
#pragma once

namespace specula {

// Finds this process's listening TCP socket on `port` and sets its backlog
// to `backlog` (capped by the kernel at net.core.somaxconn). Returns false
// when no such socket is open or listen() refuses.
bool raise_listen_backlog(int port, int backlog);

}  // namespace specula
