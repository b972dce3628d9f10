// tierswap-nbd-testhooks: tierswap-nbd with the test-only fault injection
// (exporter_test_hooks.hpp). Never installed; tests/nbd runs it where it
// needs a failing store.
#include "tests/nbd/exporter_test_hooks.hpp"

int main(int argc, char** argv) {
  static tierswap::vram::test::TestHooks hooks;
  return tierswap::vram::exporter_main(argc, argv, tierswap::vram::test::test_build(hooks));
}
