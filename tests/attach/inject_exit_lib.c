// A library whose constructor ends the process that loads it
// (tests/inject_test.cpp: the target dies during the injection).
#include <unistd.h>

__attribute__((constructor)) static void on_load(void) { _exit(7); }
