// EngineTest: the set-up the daemon's operation tests share. An Engine on a
// fresh fake root (tests/fixtures/02-zram-file-zswap: tiers "fast" on
// /dev/zram1 and "disk" on /var/swap/tier.swap) with the gate kernel,
// started in SetUp(); at the end the gate is opened, what the test built on
// the engine is dropped (drop()), the pages a test left in the areas are
// cleared (teardown_test.cpp covers a tier kept for its pages) and the
// engine stops clean.
//
//   class RunnerTest : public test::EngineTest {
//     void SetUp() override { EngineTest::SetUp(); runner_ = ...(*engine_ ...); }
//     void drop() override { runner_.reset(); }
//   };
#pragma once

#include <gtest/gtest.h>

#include <memory>

#include "daemon/engine.hpp"
#include "fake_root.hpp"
#include "gate_kernel.hpp"

namespace tierswap::test {

class EngineTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = std::make_unique<TempRoot>("02-zram-file-zswap");
    auto k = std::make_unique<GateKernel>(HostFs(root_->str()));
    kernel_ = k.get();
    EngineOptions eo;
    eo.root = root_->str();
    eo.config = (root_->path() / "etc/tierswap.yaml").string();
    engine_ = std::make_unique<Engine>(eo, std::move(k));
    ASSERT_TRUE(engine_->start());
  }
  void TearDown() override {
    // The engine owns the kernel: a test that reset the engine left kernel_ dangling.
    if (engine_ && kernel_) kernel_->open_gate();
    drop();
    if (engine_) {
      clear_swap_used(root_->path() / "proc/swaps");
      EXPECT_TRUE(engine_->stop());
    }
  }
  // Drops what the derived fixture built on the engine (a Manager, a
  // runner), after the gate is open and before the engine stops.
  virtual void drop() {}

  std::unique_ptr<TempRoot> root_;
  GateKernel* kernel_ = nullptr;
  std::unique_ptr<Engine> engine_;
};

}  // namespace tierswap::test
