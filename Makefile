# The user's interface to depot. `make run` and `make test` are the whole set-up on a fresh
# Debian 12 machine: both install what is missing (scripts/bootstrap) before they build.
JOBS ?= 2
# ccache hits across clones in different folders (CI builds a fresh clone elsewhere).
export CCACHE_BASEDIR := $(CURDIR)
export CCACHE_NOHASHDIR := true
CMAKE_FLAGS ?=
RELEASE_DIR := build/release
ASAN_DIR := build/asan
TSAN_DIR := build/tsan
FUZZ_DIR := build/fuzz
DATA_DIR ?= ./depot-data
FUZZ_SECONDS ?= 60

.PHONY: all bootstrap build run test test-asan test-tsan fuzz fuzz-run bench lint format clean

all: build

bootstrap:
	@scripts/bootstrap

$(RELEASE_DIR)/build.ninja:
	cmake -S . -B $(RELEASE_DIR) -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_EXPORT_COMPILE_COMMANDS=ON $(CMAKE_FLAGS)

build: bootstrap $(RELEASE_DIR)/build.ninja
	cmake --build $(RELEASE_DIR) -j $(JOBS)

run: build
	$(RELEASE_DIR)/depot serve --data-dir $(DATA_DIR)

test: build
	ctest --test-dir $(RELEASE_DIR) --output-on-failure -j $(JOBS)

# Unit tests again under AddressSanitizer and UndefinedBehaviorSanitizer, in their own build dir.
$(ASAN_DIR)/build.ninja:
	cmake -S . -B $(ASAN_DIR) -G Ninja -DCMAKE_BUILD_TYPE=Debug -DDEPOT_SANITIZE=address,undefined $(CMAKE_FLAGS)

test-asan: bootstrap $(ASAN_DIR)/build.ninja
	cmake --build $(ASAN_DIR) -j $(JOBS) --target depot_unit_tests
	ctest --test-dir $(ASAN_DIR) --output-on-failure -L unit

# libdepot's threads (worker, heartbeat, checkpoints) under ThreadSanitizer: only the library, its
# examples and its tests are built here; they drive the Release depot.
$(TSAN_DIR)/build.ninja:
	cmake -S . -B $(TSAN_DIR) -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DDEPOT_SANITIZE=thread \
	  -DDEPOT_TEST_SERVER=$(CURDIR)/$(RELEASE_DIR)/depot $(CMAKE_FLAGS)

test-tsan: build $(TSAN_DIR)/build.ninja
	cmake --build $(TSAN_DIR) -j $(JOBS) --target depot_client_tests
	TSAN_OPTIONS=halt_on_error=1 $(TSAN_DIR)/tests/depot_client_tests

# libFuzzer targets need clang; they live in their own build dir.
$(FUZZ_DIR)/build.ninja:
	CC=clang CXX=clang++ cmake -S . -B $(FUZZ_DIR) -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DDEPOT_FUZZ=ON $(CMAKE_FLAGS)

fuzz: bootstrap $(FUZZ_DIR)/build.ninja
	cmake --build $(FUZZ_DIR) -j $(JOBS) --target fuzz_targets

# Runs each fuzz target for FUZZ_SECONDS, starting from its seed corpus.
fuzz-run: fuzz
	@for t in $(FUZZ_DIR)/fuzz/fuzz_*; do \
	  echo "== $$t"; mkdir -p $(FUZZ_DIR)/corpus/$$(basename $$t); \
	  $$t -max_total_time=$(FUZZ_SECONDS) $(FUZZ_DIR)/corpus/$$(basename $$t) fuzz/corpus/$$(basename $$t) || exit 1; \
	done

bench: build
	$(RELEASE_DIR)/depot bench storage --dir build/bench-data
	$(RELEASE_DIR)/depot bench jobs --dir build/bench-data/jobs
	$(RELEASE_DIR)/depot bench jobs --dir build/bench-data/jobs --paced-rate 0 --clients 1+1,8+8,32+32 \
	  --targets depot-always,libdepot-always,depot-never,libdepot-never
	$(RELEASE_DIR)/depot bench iteration --dir build/bench-data/iteration

lint: $(RELEASE_DIR)/build.ninja
	scripts/lint

format:
	git ls-files '*.cc' '*.h' | xargs clang-format -i

clean:
	rm -rf build
