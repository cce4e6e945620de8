# Ember: `make run` runs the bundled example, `make test` runs every test.
# Both install missing Debian packages first (as root) or say what is missing.
BUILD      ?= build
ASAN_BUILD ?= build-asan
TSAN_BUILD ?= build-tsan
JOBS       ?= $(shell nproc)
FUZZ_SECONDS ?= 5
CMAKE_FLAGS ?=

.PHONY: all build deps run test test-release test-asan test-tsan fuzz bench format clean

all: build

deps:
	@scripts/deps.sh build

build: deps
	@cmake -S . -B $(BUILD) -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo $(CMAKE_FLAGS) >/dev/null
	@ninja -C $(BUILD) -j $(JOBS)

run: build
	@examples/run.sh $(BUILD)/ember

test:
	@scripts/deps.sh test
	@$(MAKE) --no-print-directory test-release test-asan test-tsan fuzz

test-release: build
	@cd $(BUILD) && ctest --output-on-failure -j $(JOBS)

test-asan:
	@cmake -S . -B $(ASAN_BUILD) -G Ninja -DCMAKE_BUILD_TYPE=Debug -DEMBER_SANITIZE=ON $(CMAKE_FLAGS) >/dev/null
	@ninja -C $(ASAN_BUILD) -j $(JOBS)
	@cd $(ASAN_BUILD) && ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 ctest --output-on-failure -j $(JOBS)

# ThreadSanitizer over the tests that run maps on many threads.
test-tsan:
	@cmake -S . -B $(TSAN_BUILD) -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DEMBER_TSAN=ON $(CMAKE_FLAGS) >/dev/null
	@ninja -C $(TSAN_BUILD) -j $(JOBS) ember_tests
	@TSAN_OPTIONS="halt_on_error=1 suppressions=$(CURDIR)/tests/tsan.supp" \
	  $(TSAN_BUILD)/tests/ember_tests --gtest_filter='MapStress*:Ringbuf*:PerfEvent*:Lpm*:SharedMap*'

fuzz:
	@fuzz/run-fuzzers.sh $(FUZZ_SECONDS)

bench:
	@scripts/deps.sh bench
	@bench/run.sh

format:
	@clang-format -i $$(git ls-files '*.cpp' '*.hpp')

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) $(TSAN_BUILD) build-fuzz build-bench
