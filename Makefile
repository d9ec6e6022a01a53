# Front end for CMake. Every target first installs what is missing.
.PHONY: all build install run test test-deps unit-asan fuzz fuzz-smoke bench deps format clean

BUILD ?= build
JOBS ?= $(shell nproc)
ARGS ?=
PREFIX ?= /usr/local
DESTDIR ?=

all: build

deps:
	@scripts/install-deps

$(BUILD)/build.ninja: | deps
	cmake -S . -B $(BUILD) -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo

build: deps $(BUILD)/build.ninja
	cmake --build $(BUILD) -j $(JOBS)

# A stripped binary in PREFIX/bin, a man page per subcommand, bash/zsh/fish completions, the
# web UI and the systemd unit; DESTDIR stages it (make install DESTDIR=/tmp/pkg PREFIX=/usr).
install: build
	DESTDIR="$(DESTDIR)" cmake --install $(BUILD) --prefix "$(PREFIX)" --strip

# Runs shoal's main job: the daemon, with its web UI on http://127.0.0.1:9091/.
run: build
	./$(BUILD)/shoal daemon $(ARGS)

# Also installs the test framework, reference peers and tools, and configures again so a
# build first made by `make run` (without GoogleTest) gets its tests.
test: test-deps
	cmake -S . -B $(BUILD) -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSHOAL_TESTS=ON >/dev/null
	cmake --build $(BUILD) -j $(JOBS)
	BUILD=$(BUILD) scripts/run-tests

test-deps:
	@scripts/install-deps --test

bench:
	@scripts/install-deps --bench
	scripts/run-bench

fuzz: test-deps
	scripts/run-fuzz $${FUZZ_SECONDS:-600}

fuzz-smoke: test-deps
	scripts/run-fuzz 10

format:
	clang-format -i $$(git ls-files '*.cpp' '*.hpp')

clean:
	rm -rf build build-asan build-fuzz build-bench
