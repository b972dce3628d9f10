// tierswap-nbd: the VRAM tier's NBD exporter. See exporter.hpp.
#include "backends/vram/exporter.hpp"

int main(int argc, char** argv) {
  return tierswap::vram::exporter_main(argc, argv);
}
