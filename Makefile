# Entry point. `make run` and `make test` install missing Debian packages,
# configure, build (Release) and then run the default job or the test suite;
# `make models` retrains the shipped model pair.
BUILD      ?= build
ASAN_BUILD ?= build-asan
JOBS       ?= $(shell nproc)
CMAKE_GEN  := -G Ninja

.PHONY: all deps configure build test test-asan run models clean format

all: build

deps:
	@scripts/install-deps.sh

$(BUILD)/build.ninja: | deps
	@cmake -S . -B $(BUILD) $(CMAKE_GEN) -DCMAKE_BUILD_TYPE=Release >/dev/null

configure: $(BUILD)/build.ninja

build: configure
	@cmake --build $(BUILD) -j $(JOBS)

test: build
	@ctest --test-dir $(BUILD) --output-on-failure -j $(JOBS)

# -O1 -g1: line tables are all a sanitizer report's stack trace needs, and
# on 2 cores this builds in 10 minutes instead of 17 (-O2 -g) for 1 more
# minute of tests: CI runs this suite on every stop.
ASAN_FLAGS := -O1 -g1 -DNDEBUG

$(ASAN_BUILD)/build.ninja: | deps
	@cmake -S . -B $(ASAN_BUILD) $(CMAKE_GEN) -DCMAKE_BUILD_TYPE=RelWithDebInfo \
	  -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="$(ASAN_FLAGS)" -DCMAKE_C_FLAGS_RELWITHDEBINFO="$(ASAN_FLAGS)" \
	  -DSPECULA_SANITIZE=ON -DSPECULA_BUILD_BENCH=OFF >/dev/null

test-asan: $(ASAN_BUILD)/build.ninja
	@cmake --build $(ASAN_BUILD) -j $(JOBS)
	@ctest --test-dir $(ASAN_BUILD) --output-on-failure -j $(JOBS)

run: build
	@scripts/run-default.sh $(BUILD)

# Retrains the shipped pair in models/ from the Python standard library
# (hours on 2 cores; resumable: run it again to continue). models/README.md.
models: build
	@scripts/make-models.sh $(BUILD)

format:
	@git ls-files '*.cpp' '*.h' | xargs clang-format -i

clean:
	@rm -rf $(BUILD) $(ASAN_BUILD)
