// The width of the terminal on standard output, for status and watch.
#pragma once

#include <sys/ioctl.h>
#include <unistd.h>

namespace tierswap::ctl {

// Columns of the terminal on stdout; 80 when stdout is not a terminal (a
// pipe, a file) or the terminal reports 0 columns.
inline int terminal_columns() {
  winsize ws{};
  if (isatty(STDOUT_FILENO) && ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0) return ws.ws_col;
  return 80;
}

}  // namespace tierswap::ctl
