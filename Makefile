# The two set-up commands of the README: `make demo` and `make test`.
BUILD      ?= build
ASAN_BUILD ?= build-asan
NOMPI_BUILD ?= build-nompi
JOBS       ?= $(shell nproc)

.PHONY: all deps ray build build-asan build-nompi demo test test-ray bench bench-full bench-ray clean

all: build

deps:
	@bash scripts/install-deps.sh
	$(if $(RAY_TESTS),@bash scripts/install-ray.sh)

# RAY_TESTS=-DPM_REQUIRE_RAY=ON (set by `make test`): deps installs Ray into
# .venv too, and configuring fails when Ray is missing there instead of
# leaving the Ray tests out.
build: deps
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo $(RAY_TESTS) >/dev/null
	cmake --build $(BUILD) -j $(JOBS)

build-asan: deps
	cmake -S . -B $(ASAN_BUILD) -DCMAKE_BUILD_TYPE=Debug -DPM_SANITIZE=ON $(RAY_TESTS) >/dev/null
	cmake --build $(ASAN_BUILD) -j $(JOBS)

# Ray (pinned) into the project-local .venv, for RayIo and its tests.
ray:
	bash scripts/install-ray.sh

# The collectives demo, then a sweep of the reverse-osmosis example model
# over feed salinity x recovery, on the embedded default (no daemon).
# libpm without MPI (as on a machine where it is not installed): it must build,
# and an MPI launch must fail clearly.
build-nompi: deps
	cmake -S . -B $(NOMPI_BUILD) -DCMAKE_BUILD_TYPE=Release -DCMAKE_DISABLE_FIND_PACKAGE_MPI=ON >/dev/null
	cmake --build $(NOMPI_BUILD) -j $(JOBS)

demo: build
	./$(BUILD)/bin/pm-demo
	./$(BUILD)/bin/pm-sweep --model $(BUILD)/lib/libpm_ro_model.so \
	    --param 'feed_salinity=linspace(5,45,9)' --param 'recovery=linspace(0.3,0.7,5)' \
	    -o $(BUILD)/ro-sweep.csv
	@echo "demo: RO sweep written to $(BUILD)/ro-sweep.csv:" && head -4 $(BUILD)/ro-sweep.csv

# Every test, on the optimised build and on the address+undefined sanitizer
# build (the Ray tests against a real local Ray head each time); the
# backends' quick tests on the build without MPI.
test: RAY_TESTS = -DPM_REQUIRE_RAY=ON
test: build build-asan build-nompi
	bash scripts/run-tests.sh $(BUILD) $(ASAN_BUILD)
	PM_TEST_LABELS='unit|serial|threads|mpi' bash scripts/run-tests.sh $(NOMPI_BUILD)

# Only the RayIo tests (a real local Ray head), on the optimised build.
test-ray: RAY_TESTS = -DPM_REQUIRE_RAY=ON
test-ray: build
	PM_TEST_LABELS=ray bash scripts/run-tests.sh $(BUILD)

bench: build
	./$(BUILD)/bin/pm-bench-latency
	./$(BUILD)/bin/pm-bench-sweep
	@if [ -x ./$(BUILD)/bin/pm-bench-mpi ]; then ./$(BUILD)/bin/pm-bench-mpi; \
	 else echo "bench: pm-bench-mpi not built (no MPI)"; fi

# The sweep benchmark at the issue's full size (100,000 rows of a 1 ms model; ~5 min).
bench-full: build
	./$(BUILD)/bin/pm-bench-sweep --full

# RayIo next to Python Ray actors + ActorPool.map_unordered, on a private
# local head (started and stopped here; never `ray stop`).
bench-ray: RAY_TESTS = -DPM_REQUIRE_RAY=ON
bench-ray: build
	bash tests/ray-head.sh start $(BUILD)/bench-ray-head $(CURDIR)/.venv/bin
	bash tests/with-ray-head.sh $(BUILD)/bench-ray-head ./$(BUILD)/bin/pm-bench-ray; \
	  status=$$?; bash tests/ray-head.sh stop $(BUILD)/bench-ray-head; exit $$status

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) $(NOMPI_BUILD)
