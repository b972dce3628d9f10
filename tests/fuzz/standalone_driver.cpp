// A stand-in for libFuzzer's main() where libFuzzer cannot be used (no
// clang, or a TIERSWAP_SANITIZE tree: see CMakeLists.txt). It is NOT
// coverage-guided: it runs every seed, then a fixed pseudo-random sequence
// of mutations of the seeds (bit flips, byte sets, inserted and deleted
// runs, tokens from a small YAML/size-expression dictionary, splices of two
// seeds) until -runs or -max_total_time is reached. The sequence depends
// only on -seed and the seeds, so iteration N is the same input on every
// machine; only how far a run gets depends on the machine's speed.
//
// Takes libFuzzer's spelling of the flags it shares, so run_fuzzer.sh drives
// both kinds alike: -max_total_time=S -runs=N -seed=N -artifact_prefix=P
// -max_len=N; other -flags (e.g. -rss_limit_mb) are accepted and ignored.
// Arguments that are not flags are seed files or directories of them.
//
// On a sanitizer report or a failed FUZZ_CHECK (abort) the input being run
// is written to <artifact_prefix>crash-<iteration> before the process dies.
#include <fcntl.h>
#include <sanitizer/common_interface_defs.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <string_view>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size);

namespace {

using Bytes = std::vector<std::uint8_t>;

// The input being run and where it goes if the process dies; set up before
// each run so that the handlers only call write().
const Bytes* g_current = nullptr;
char g_crash_path[4096] = "crash";

void dump_current() {
  if (!g_current) return;
  int fd = ::open(g_crash_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (fd < 0) return;
  const std::uint8_t* p = g_current->data();
  std::size_t left = g_current->size();
  while (left > 0) {
    ssize_t n = ::write(fd, p, left);
    if (n <= 0) break;
    p += n;
    left -= static_cast<std::size_t>(n);
  }
  ::close(fd);
  static const char msg[] = "standalone_driver: the failing input is in ";
  (void)!::write(2, msg, sizeof msg - 1);
  (void)!::write(2, g_crash_path, std::strlen(g_crash_path));
  (void)!::write(2, "\n", 1);
}

extern "C" void on_abort(int sig) {
  dump_current();
  std::signal(sig, SIG_DFL);
  std::raise(sig);
}

// splitmix64: small, fast and the same everywhere.
struct Rng {
  std::uint64_t s;
  std::uint64_t next() {
    std::uint64_t z = (s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }
  std::size_t below(std::size_t n) { return n == 0 ? 0 : static_cast<std::size_t>(next() % n); }
};

// Pieces of YAML and of size expressions that single-byte mutations rarely
// build on their own.
const std::string_view kTokens[] = {
    "\n",
    "\n  ",
    "- ",
    ": ",
    "[",
    "]",
    "{",
    "}",
    ",",
    "&a ",
    "*a",
    "<<: ",
    "!!str ",
    "!!map ",
    "? ",
    "|\n",
    ">\n",
    "'",
    "\"",
    "#",
    "---\n",
    "...\n",
    "~",
    "null",
    "true",
    "no",
    "%",
    " of vram",
    " of ram",
    "min(",
    "max(",
    "ram",
    "vram",
    "*",
    "/",
    "(",
    ")",
    "-",
    "0",
    "1.5",
    "G",
    "T",
    "KiB",
    "4096",
    "99999999999999999999",
    "tiers:\n",
    "name: ",
    "kind: ",
    "zram",
    "file",
    "partition",
    "vram",
    "size: ",
    "priority: ",
    "-1",
    "32768",
    "path: /",
    "device: ",
    "UUID=",
    "algorithm: ",
    "recompress: ",
    "profile: ",
    "desktop",
    "server",
    "gpu-workstation",
    "sysctl:\n",
    "vm.swappiness: ",
    "zswap:\n",
    "enabled: ",
    "compressor: ",
    "mem_limit: ",
    "version: 1\n",
    "\t",
    "\r\n",
    "\xef\xbb\xbf",
    "\xff\xfe",
};

// Starts from a seed, or half the time from the previous mutant so that
// mutations stack up over a few rounds.
Bytes mutate(const std::vector<Bytes>& seeds, const Bytes& previous, Rng& rng, std::size_t max_len) {
  Bytes b = (!previous.empty() && rng.below(2) == 0) ? previous : seeds[rng.below(seeds.size())];
  const std::size_t steps = 1 + rng.below(4);
  for (std::size_t s = 0; s < steps; ++s) {
    switch (rng.below(7)) {
      case 0:  // flip one bit
        if (!b.empty()) b[rng.below(b.size())] ^= static_cast<std::uint8_t>(1U << rng.below(8));
        break;
      case 1:  // set one byte
        if (!b.empty()) b[rng.below(b.size())] = static_cast<std::uint8_t>(rng.next());
        break;
      case 2: {  // insert a run of random bytes
        std::size_t at = rng.below(b.size() + 1), n = 1 + rng.below(8);
        Bytes run(n);
        for (auto& c : run) c = static_cast<std::uint8_t>(rng.next());
        b.insert(b.begin() + static_cast<std::ptrdiff_t>(at), run.begin(), run.end());
        break;
      }
      case 3: {  // delete a run
        if (b.empty()) break;
        std::size_t at = rng.below(b.size()), n = 1 + rng.below(std::min<std::size_t>(16, b.size() - at));
        b.erase(b.begin() + static_cast<std::ptrdiff_t>(at), b.begin() + static_cast<std::ptrdiff_t>(at + n));
        break;
      }
      case 4:
      case 5: {  // insert a dictionary token
        std::string_view t = kTokens[rng.below(std::size(kTokens))];
        std::size_t at = rng.below(b.size() + 1);
        b.insert(b.begin() + static_cast<std::ptrdiff_t>(at), t.begin(), t.end());
        break;
      }
      case 6: {  // splice: our head, another seed's tail
        const Bytes& o = seeds[rng.below(seeds.size())];
        std::size_t cut = rng.below(b.size() + 1), from = rng.below(o.size() + 1);
        b.resize(cut);
        b.insert(b.end(), o.begin() + static_cast<std::ptrdiff_t>(from), o.end());
        break;
      }
    }
  }
  if (b.size() > max_len) b.resize(max_len);
  return b;
}

bool read_file(const std::filesystem::path& p, Bytes& out) {
  std::ifstream in(p, std::ios::binary);
  if (!in) return false;
  out.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  return true;
}

void run_one(const Bytes& input, std::uint64_t iteration, const std::string& prefix) {
  std::snprintf(g_crash_path, sizeof g_crash_path, "%scrash-%llu", prefix.c_str(),
                static_cast<unsigned long long>(iteration));
  g_current = &input;
  LLVMFuzzerTestOneInput(input.data(), input.size());
  g_current = nullptr;
}

}  // namespace

int main(int argc, char** argv) {
  double max_total_time = 0;
  std::uint64_t runs = 0, seed = 1;
  std::size_t max_len = 0;
  std::string prefix;
  std::vector<std::filesystem::path> inputs;
  for (int i = 1; i < argc; ++i) {
    std::string_view a = argv[i];
    auto value = [&](std::string_view flag) -> const char* {
      return a.starts_with(flag) ? argv[i] + flag.size() : nullptr;
    };
    if (const char* v = value("-max_total_time="))
      max_total_time = std::atof(v);
    else if (const char* v = value("-runs="))
      runs = std::strtoull(v, nullptr, 10);
    else if (const char* v = value("-seed="))
      seed = std::strtoull(v, nullptr, 10);
    else if (const char* v = value("-max_len="))
      max_len = std::strtoull(v, nullptr, 10);
    else if (const char* v = value("-artifact_prefix="))
      prefix = v;
    else if (!a.starts_with("-"))
      inputs.emplace_back(a);
  }

  std::vector<Bytes> seeds;
  for (const auto& in : inputs) {
    std::error_code ec;
    if (std::filesystem::is_directory(in, ec)) {
      for (const auto& e : std::filesystem::recursive_directory_iterator(in))
        if (e.is_regular_file()) seeds.emplace_back(), read_file(e.path(), seeds.back());
    } else if (Bytes b; read_file(in, b)) {
      seeds.push_back(std::move(b));
    } else {
      std::fprintf(stderr, "standalone_driver: cannot read %s\n", in.c_str());
      return 2;
    }
  }
  if (seeds.empty()) seeds.emplace_back();
  if (max_len == 0)
    for (const auto& s : seeds) max_len = std::max(max_len, s.size() + 64);

  __sanitizer_set_death_callback(dump_current);
  std::signal(SIGABRT, on_abort);

  std::printf("standalone_driver: not coverage-guided; %zu seeds, seed=%llu, max_len=%zu\n", seeds.size(),
              static_cast<unsigned long long>(seed), max_len);
  std::uint64_t iteration = 0;
  for (const auto& s : seeds) run_one(s, iteration++, prefix);

  Rng rng{seed};
  Bytes previous;
  const auto start = std::chrono::steady_clock::now();
  auto elapsed = [&] {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  };
  while ((runs == 0 || iteration < runs) && (max_total_time <= 0 || elapsed() < max_total_time)) {
    previous = mutate(seeds, previous, rng, max_len);
    run_one(previous, iteration++, prefix);
    if (runs == 0 && max_total_time <= 0) break;  // neither bound: seeds and one mutation only
  }
  std::printf("standalone_driver: done, %llu inputs in %.1f s\n", static_cast<unsigned long long>(iteration),
              elapsed());
  return 0;
}
