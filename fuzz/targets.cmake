# The parsers of outside input that have a fuzz harness (fuzz/fuzz_NAME.c): one list for the
# fuzz programs (fuzz/CMakeLists.txt) and their replay tests (tests/CMakeLists.txt).
set(CLPAR_FUZZ_TARGETS safetensors idx text specs cli)
