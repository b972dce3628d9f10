# Quick start (root, fresh Debian 12):
#   make run    install missing build deps, build, run tierswapd in the foreground
#               (on /etc/tierswap.yaml, else its embedded default; ARGS=... adds options)
#   make test   install missing build deps, build, run the test suites (ctest)
#   make package  build the .deb (CPack) in $(BUILD)/ (docs/packaging.md)
BUILD ?= build
JOBS ?= $(shell nproc)
CMAKE_FLAGS ?=
CTEST_ARGS ?= --output-on-failure -LE 'gpu|bench'

.PHONY: all deps build run test package clean

all: build

# Installs only what is missing, so a second run costs nothing.
deps:
	@missing=$$(grep -v '^\s*#' packaging/build-deps.txt | grep -v '^\s*$$' | while read -r p; do \
	  dpkg-query -W -f='$${Status}\n' "$$p" 2>/dev/null | grep -q '^install ok installed' || echo "$$p"; done); \
	if [ -n "$$missing" ]; then \
	  echo "make deps: installing $$missing"; \
	  if [ "$$(id -u)" != 0 ]; then echo "make deps: run as root to install: $$missing" >&2; exit 1; fi; \
	  export DEBIAN_FRONTEND=noninteractive; \
	  apt-get update -qq && apt-get install -y -qq --no-install-recommends $$missing; \
	fi

$(BUILD)/CMakeCache.txt: | deps
	cmake -S . -B $(BUILD) $(CMAKE_FLAGS)

build: deps $(BUILD)/CMakeCache.txt
	cmake --build $(BUILD) -j$(JOBS)

run: build
	./$(BUILD)/bin/tierswapd $(ARGS)

test: build
	cd $(BUILD) && ctest $(CTEST_ARGS)

# The .deb: binaries, units, D-Bus and polkit files, man pages, completions,
# /etc/tierswap.yaml as a conffile. packaging/deb-check.sh installs and
# purges it.
package: build
	cd $(BUILD) && cpack -G DEB

clean:
	rm -rf $(BUILD)
