// The raw-device measurement with the `fio` program: its command line and
// its JSON output (pure; the runner executes it).
//
// Jobs: 4 KiB random I/O, libaio at queue depth 32, O_DIRECT, time based.
// A writable target gets "randwrite" and then (stonewall) "randread" over
// the pages just written; a read-only one gets "randread" only. Written
// buffers are 50% compressible (fio's buffer_compress_percentage), like
// typical anonymous memory, so that zram is not measured on random noise.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "bench/swap/report.hpp"
#include "common/result.hpp"

namespace tierswap::bench {

std::vector<std::string> fio_args(const std::string& target, bool writable, double seconds,
                                  std::uint64_t size);

// The same jobs against an NBD export through fio's nbd engine (libnbd),
// e.g. uri "nbd+unix:///?socket=/tmp/x/nbd.sock": always writable (a
// scratch export), no O_DIRECT (there is no page cache in between).
std::vector<std::string> fio_nbd_args(const std::string& uri, double seconds, std::uint64_t size);

// One RawResult per job ("randwrite" from the job's write side, "randread"
// from its read side), tier and target filled in. EINVAL naming the key
// when the text is not fio's JSON (fio may print warnings before it; they
// are skipped).
Result<std::vector<RawResult>> parse_fio_json(std::string_view text, const std::string& tier,
                                              const std::string& target);

}  // namespace tierswap::bench
