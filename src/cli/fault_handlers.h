// Signal handlers for the whole run of a command, installed by main:
// - SIGINT/SIGTERM (where not ignored at start) delete the temporary file of
//   any GGUF write in progress, then end the process as the signal would
//   have. Long jobs (train, distill, generate --osd-save) put StopOnSignals
//   over them for their loop and restore them after.
// - SIGBUS, which a memory-mapped model raises when its file is truncated
//   while in use, prints which file and what to do and exits with status 1,
//   instead of a bare "Bus error".
#pragma once

namespace specula::cli {

void install_fault_handlers();

}  // namespace specula::cli
