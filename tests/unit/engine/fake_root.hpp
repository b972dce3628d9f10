// Fake machines for engine tests: a copy of a fixture tree
// (tests/fixtures/NN-name/{etc,sys,proc,dev,run}) in a temp dir, and a
// snapshot of every file in it, to prove that a rolled-back apply left the
// machine as it was.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>

#ifndef TIERSWAP_FIXTURES_DIR
#error "TIERSWAP_FIXTURES_DIR must be defined"
#endif

namespace tierswap::test {

namespace fs = std::filesystem;

inline fs::path fixtures_dir() {
  return TIERSWAP_FIXTURES_DIR;
}

inline std::string slurp(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

inline void spit(const fs::path& p, const std::string& s) {
  fs::create_directories(p.parent_path());
  std::ofstream(p, std::ios::trunc) << s;
}

// Sets the Used column (KiB) of one area in a fake /proc/swaps file.
inline void set_swap_used(const fs::path& swaps, const std::string& area, std::uint64_t kib) {
  std::istringstream in(slurp(swaps));
  std::string out, line;
  while (std::getline(in, line)) {
    if (line.starts_with(area + "\t")) {
      std::istringstream f(line);
      std::string p, type, size, used, prio;
      f >> p >> type >> size >> used >> prio;
      line = p + "\t" + type + "\t" + size + "\t" + std::to_string(kib) + "\t" + prio;
    }
    out += line + "\n";
  }
  spit(swaps, out);
}

// Sets the Used column of every area in a fake /proc/swaps file to 0.
inline void clear_swap_used(const fs::path& swaps) {
  std::istringstream in(slurp(swaps));
  std::string line;
  std::getline(in, line);  // the header
  std::string out = line + "\n";
  while (std::getline(in, line)) {
    std::istringstream f(line);
    std::string p, type, size, used, prio;
    if (!(f >> p >> type >> size >> used >> prio)) continue;
    out += p + "\t" + type + "\t" + size + "\t0\t" + prio + "\n";
  }
  spit(swaps, out);
}

class TempRoot {
 public:
  explicit TempRoot(const std::string& fixture = {}) {
    char tmpl[] = "/tmp/tierswap-unit-XXXXXX";
    path_ = ::mkdtemp(tmpl);
    if (!fixture.empty()) fs::copy(fixtures_dir() / fixture, path_, fs::copy_options::recursive);
  }
  ~TempRoot() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  TempRoot(const TempRoot&) = delete;
  TempRoot& operator=(const TempRoot&) = delete;
  [[nodiscard]] const fs::path& path() const { return path_; }
  [[nodiscard]] std::string str() const { return path_.string(); }

  // relative path -> content ("<dir>" for directories).
  [[nodiscard]] std::map<std::string, std::string> snapshot() const {
    std::map<std::string, std::string> out;
    for (const auto& e : fs::recursive_directory_iterator(path_)) {
      const auto rel = fs::relative(e.path(), path_).string();
      // Trailing white space is not compared: sysfs prints "60\n" where
      // tierswap writes "60", as `echo -n 60 >` would.
      std::string v = e.is_directory() ? "<dir>" : slurp(e.path());
      while (!v.empty() && (v.back() == '\n' || v.back() == ' ')) v.pop_back();
      out[rel] = v;
    }
    return out;
  }

 private:
  fs::path path_;
};

}  // namespace tierswap::test
