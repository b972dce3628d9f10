// tierswapd's command line and signal loop. main.cpp only calls run_daemon().
//
// Exit status (tierswapd(8)): 0 stopped cleanly; 1 the first apply failed
// (after rolling back) or teardown could not restore everything; 2 usage.
#pragma once

namespace tierswap {
int run_daemon(int argc, char** argv);
}
